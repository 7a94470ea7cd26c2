"""Whole-molecule membership from embeddings alone (query-only).

The question: given only `Victim.embed`, can an attacker tell a molecule the victim was
pre-trained on (a member) from one it never saw? Two ingredients:

1. A per-molecule statistic from the victim's embeddings (`STATISTICS`, one chosen per audit):
   - `norm`: the L2 norm of the molecule's embedding (default: the statistic that showed power
     in the canary control on a contrastive victim);
   - `invariance`: minus the mean cosine distance between the embedding of m and those of
     `n_neighbours` random valid one-edit neighbours m' (an atom's element changed, a terminal
     atom deleted, a bond order changed): contrastive training pulls a member's views together
     (EncoderMI);
   - `sharpness`: that distance itself (a model that memorised m as an isolated point).
2. Calibration (LiRA-style, Carlini et al. 2022): the same statistic from a reference model that
   never saw the private set (a reference victim or the untrained encoder) measures the value m
   gets *anyway* (small, rigid or unusual molecules stand out for any model). The membership score
   is the victim's statistic minus the reference's, so what remains is what the victim's training
   added.

Every embedding goes through `Victim.embed` in one batched call per model (the molecules and all
their neighbours at once); neighbours are drawn from a seeded generator, so the same seed gives
the same score. This module is the attacker's side (it needs only query access); the owner's
side (members vs non-members of a known training set, AUC and TPR at low FPR) is
`molleak.evaluate.membership.membership_audit`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rdkit import Chem

from molleak.chem import rdkit_quiet
from molleak.errors import MolleakError

log = logging.getLogger(__name__)

# elements an atom may be swapped to, with the valence each needs to stay sane
_SWAP_ELEMENTS = (6, 7, 8, 9, 16, 17)


@dataclass
class Neighbourhoods:
    """One-edit neighbours of a list of molecules.

    Attributes:
        smiles: the canonical query molecules, in input order.
        neighbours: for each query, its distinct valid neighbours (canonical SMILES).
    """

    smiles: list[str]
    neighbours: list[list[str]]

    def flat(self) -> tuple[list[str], np.ndarray]:
        """All neighbour SMILES and, per neighbour, the index of its query molecule."""
        flat = [n for ns in self.neighbours for n in ns]
        owner = np.repeat(np.arange(len(self.neighbours)), [len(ns) for ns in self.neighbours])
        return flat, owner


def _edit(mol: Chem.Mol, rng: np.random.Generator) -> str | None:
    """One random edit of `mol`, as canonical SMILES, or None when the result is not a valid molecule."""
    rw = Chem.RWMol(mol)
    kind = rng.integers(3)
    n = rw.GetNumAtoms()
    if kind == 0:  # change one atom's element
        atom = rw.GetAtomWithIdx(int(rng.integers(n)))
        choices = [z for z in _SWAP_ELEMENTS if z != atom.GetAtomicNum()]
        atom.SetAtomicNum(int(rng.choice(choices)))
        atom.SetNoImplicit(False)
        atom.SetNumExplicitHs(0)
        atom.SetFormalCharge(0)
    elif kind == 1:  # delete a terminal heavy atom
        terminal = [a.GetIdx() for a in rw.GetAtoms() if a.GetDegree() == 1]
        if not terminal or n <= 3:
            return None
        rw.RemoveAtom(int(rng.choice(terminal)))
    else:  # change one non-ring, non-aromatic bond's order between single and double
        bonds = [b for b in rw.GetBonds() if not b.GetIsAromatic() and not b.IsInRing()]
        if not bonds:
            return None
        bond = bonds[int(rng.integers(len(bonds)))]
        single = bond.GetBondType() == Chem.BondType.SINGLE
        bond.SetBondType(Chem.BondType.DOUBLE if single else Chem.BondType.SINGLE)
    try:
        out = rw.GetMol()
        Chem.SanitizeMol(out)
        smi = Chem.MolToSmiles(out)
    except Exception:  # RDKit raises assorted errors for invalid valences and kekulisation
        return None
    if "." in smi or Chem.MolFromSmiles(smi) is None:
        return None
    return smi


def draw_neighbours(
    smiles: Sequence[str], n_neighbours: int = 8, seed: int = 0, max_tries: int = 60
) -> Neighbourhoods:
    """Draw up to `n_neighbours` distinct valid one-edit neighbours for each molecule (0: none, queries only).

    Each molecule gets its own generator seeded by (seed, position), so a molecule's neighbours do
    not depend on which other molecules are queried with it.

    Raises:
        MolleakError: a SMILES does not parse.
    """
    if n_neighbours < 0:
        raise MolleakError(f"n_neighbours must not be negative, got {n_neighbours}")
    canon: list[str] = []
    neighbours: list[list[str]] = []
    with rdkit_quiet():
        for i, s in enumerate(smiles):
            mol = Chem.MolFromSmiles(s)
            if mol is None:
                raise MolleakError(f"membership: invalid SMILES {s!r}")
            key = Chem.MolToSmiles(mol)
            mol = Chem.MolFromSmiles(key)
            Chem.Kekulize(mol, clearAromaticFlags=False)
            rng = np.random.default_rng([seed, i])
            got: dict[str, None] = {}
            for _ in range(max_tries):
                if len(got) >= n_neighbours:
                    break
                smi = _edit(mol, rng)
                if smi is not None and smi != key:
                    got[smi] = None
            canon.append(key)
            neighbours.append(list(got))
    n_empty = sum(1 for ns in neighbours if not ns)
    if n_empty and n_neighbours:
        log.warning("membership: %d of %d molecules got no valid neighbour (scored NaN)", n_empty, len(canon))
    return Neighbourhoods(canon, neighbours)


def sharpness(victim, hoods: Neighbourhoods) -> np.ndarray:
    """Mean cosine distance between each molecule's embedding and its neighbours' (NaN if none).

    One batched `victim.embed` call covers the molecules and all their neighbours.
    """
    base, nb, owner = _embed_hoods(victim, hoods)
    base = base / np.maximum(np.linalg.norm(base, axis=1, keepdims=True), 1e-12)
    nb = nb / np.maximum(np.linalg.norm(nb, axis=1, keepdims=True), 1e-12)
    dist = 1.0 - np.einsum("ij,ij->i", nb, base[owner])
    total = np.bincount(owner, weights=dist, minlength=len(hoods.smiles))
    count = np.bincount(owner, minlength=len(hoods.smiles))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _embed_hoods(victim, hoods: Neighbourhoods) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Embeddings of the query molecules and of their neighbours, and each neighbour's owner (one call)."""
    flat, owner = hoods.flat()
    emb = victim.embed(list(hoods.smiles) + flat).astype(np.float64)
    return emb[: len(hoods.smiles)], emb[len(hoods.smiles) :], owner


def invariance(victim, hoods: Neighbourhoods) -> np.ndarray:
    """Minus the sharpness: how little one-edit neighbours move the embedding.

    The direction EncoderMI (Liu et al., CCS 2021) found for contrastive encoders: training pulls
    the perturbed views of a training example together, so a member's neighbours stay closer.
    """
    return -sharpness(victim, hoods)


def embedding_norm(victim, hoods: Neighbourhoods) -> np.ndarray:
    """L2 norm of each molecule's embedding (neighbours are not used).

    Contrastive training with a projection head and a temperature pushes the molecules it is
    trained on away from the origin; the reference's norm calibrates molecules that are large
    for any model (many atoms, many rings).
    """
    base = victim.embed(list(hoods.smiles)).astype(np.float64)
    return np.linalg.norm(base, axis=1)


#: membership statistics by name: (victim, neighbourhoods) -> per-molecule value, higher = member.
#: The canary control (`molleak.plans.leakage.run_canary`, BENCHMARKS.md) measures which has power on
#: which kind of victim; `norm` is the default because it is the one that showed it there.
STATISTICS = {"norm": embedding_norm, "invariance": invariance, "sharpness": sharpness}
#: statistics that need no neighbours (no edits drawn, no neighbour queries)
_WITHOUT_NEIGHBOURS = {"norm"}
DEFAULT_STATISTIC = "norm"


def statistic_fn(name: str):
    """The membership statistic called `name`.

    Raises:
        MolleakError: unknown name.
    """
    try:
        return STATISTICS[name]
    except KeyError:
        raise MolleakError(f"unknown membership statistic {name!r}; choose from {', '.join(STATISTICS)}") from None


def _neighbours_for(statistic: str, n_neighbours: int) -> int:
    """Neighbours a statistic needs drawn: none for `norm` (no edits, no neighbour queries)."""
    return 0 if statistic in _WITHOUT_NEIGHBOURS else n_neighbours


def membership_scores(
    victim,
    smiles: Sequence[str],
    reference=None,
    *,
    n_neighbours: int = 8,
    seed: int = 0,
    statistic: str = DEFAULT_STATISTIC,
) -> np.ndarray:
    """Membership score per molecule: higher means "more likely a training member".

    Args:
        victim: the model under audit (anything with `embed(list[str]) -> [n, d]`).
        smiles: molecules to score.
        reference: a model that never saw the private set (reference victim or untrained
            encoder); when given, its statistic is subtracted (calibration).
        n_neighbours: one-edit neighbours per molecule.
        seed: seeds the neighbour draw (the same neighbours are used for both models).
        statistic: a name from `STATISTICS`.

    Returns:
        float64 [n]; NaN for molecules with no valid neighbour.
    """
    fn = statistic_fn(statistic)
    hoods = draw_neighbours(smiles, n_neighbours=_neighbours_for(statistic, n_neighbours), seed=seed)
    score = fn(victim, hoods)
    if reference is not None:
        score = score - fn(reference, hoods)
    return score
