"""Assembly: attachment points, attaching a motif, and the one finalise function.

Conventions (method.md section 2):

- An *attachment point* is a dummy atom `*` bonded by a single bond to the atom that will carry
  the new bond (its *anchor*). Templates write points as plain `*`; motifs label theirs `[*:1]`,
  `[*:2]`, ...
- `open_points(mol)` lists a molecule's points as dummy-atom indices in atom order. After
  `attach`, the molecule's remaining points keep their order and the motif's remaining points
  follow them, so an action's point ordinal `p` means the same thing whenever the same molecule is
  rebuilt from the same actions.
- `motif_points(motif)` lists a motif's points ordered by their label (unlabelled ones last, in
  atom order); an action's `j` is an ordinal into that list.
- `finalize` is the one way a molecule becomes a candidate: every remaining `*` becomes H, the
  molecule is sanitised with the Hs removed (so an `*` on an aromatic n becomes `[nH]`), and the
  canonical SMILES is returned, or None when that fails.
"""

from __future__ import annotations

from collections.abc import Sequence

from rdkit import Chem

from molleak.chem import rdkit_quiet

_SINGLE = Chem.BondType.SINGLE


def as_mol(mol_or_smiles: Chem.Mol | str) -> Chem.Mol | None:
    """A molecule from a Mol or a SMILES string (None if the SMILES does not parse)."""
    if isinstance(mol_or_smiles, Chem.Mol):
        return mol_or_smiles
    if not mol_or_smiles:
        return None
    with rdkit_quiet():
        return Chem.MolFromSmiles(mol_or_smiles)


def open_points(mol: Chem.Mol | str) -> list[int]:
    """Indices of the dummy atoms (attachment points) of `mol` (a Mol or SMILES), in atom order.

    Raises:
        ValueError: a SMILES that does not parse.
    """
    m = as_mol(mol)
    if m is None:
        raise ValueError(f"molecule does not parse: {mol!r}")
    return [a.GetIdx() for a in m.GetAtoms() if a.GetAtomicNum() == 0]


def motif_points(motif: Chem.Mol | str) -> list[int]:
    """Dummy-atom indices of a motif, ordered by label (`[*:1]` first; unlabelled last, in atom order).

    Raises:
        ValueError: the motif SMILES does not parse.
    """
    mol = as_mol(motif)
    if mol is None:
        raise ValueError(f"motif does not parse: {motif!r}")
    dummies = [a for a in mol.GetAtoms() if a.GetAtomicNum() == 0]
    dummies.sort(key=lambda a: (a.GetAtomMapNum() or 1 << 30, a.GetIdx()))
    return [a.GetIdx() for a in dummies]


def point_anchor(mol: Chem.Mol, point: int) -> int | None:
    """The atom a dummy point is bonded to, or None when the point is not a singly bonded dummy."""
    atom = mol.GetAtomWithIdx(point)
    if atom.GetAtomicNum() != 0 or atom.GetDegree() != 1:
        return None
    bond = atom.GetBonds()[0]
    if bond.GetBondType() != _SINGLE:
        return None
    return bond.GetOtherAtomIdx(point)


def _take_hydrogen(rw: Chem.RWMol, idx: int) -> bool:
    """Take one H from atom `idx` (its explicit-H count, else an implicit H); False if it has none."""
    atom = rw.GetAtomWithIdx(idx)
    if atom.GetNumExplicitHs() > 0:
        # Bracket atoms ([nH], [NH3+]) store their Hs as an explicit count: decrement it, or the
        # new bond would push the atom over its valence.
        atom.SetNumExplicitHs(atom.GetNumExplicitHs() - 1)
        atom.SetNoImplicit(True)
        return True
    return atom.GetNumImplicitHs() > 0


def _site(rw: Chem.RWMol, point: int) -> tuple[int, int | None] | None:
    """(anchor atom, dummy to delete or None) for a point given as a dummy or an H-bearing atom."""
    atom = rw.GetAtomWithIdx(point)
    if atom.GetAtomicNum() == 0:
        anchor = point_anchor(rw, point)
        return None if anchor is None else (anchor, point)
    if atom.GetAtomicNum() == 1:
        return None
    atom.UpdatePropertyCache(strict=False)
    if atom.GetTotalNumHs(includeNeighbors=True) < 1:
        return None
    return point, None


def attach(
    mol: Chem.Mol | str,
    point: int,
    motif: Chem.Mol | str | int,
    motif_point: int,
    motifs: Sequence[Chem.Mol | str] | None = None,
) -> Chem.Mol | None:
    """Join `mol` at atom `point` to `motif` at atom `motif_point` by one single bond.

    Each side's point is either a dummy atom (it is removed and its neighbour takes the bond: the
    usual case) or a heavy atom carrying at least one H (one H is taken: an aromatic `[nH]` loses
    its explicit H, a charged `[NH3+]` becomes `[NH2+]`). The motif's other points stay open and
    come after the molecule's remaining points in `open_points` order.

    Args:
        mol: the current molecule (Mol or SMILES), with its dummies.
        point: atom index in `mol` (e.g. an entry of `open_points(mol)`).
        motif: a motif Mol or SMILES, or an index into `motifs`.
        motif_point: atom index in the motif (e.g. an entry of `motif_points(motif)`).
        motifs: the motif list when `motif` is an index.

    Returns:
        The sanitised joined molecule, or None when a point is invalid or the result does not
        sanitise.
    """
    if isinstance(motif, int):
        if motifs is None:
            raise ValueError("attach: a motif index needs the motif list (motifs=...)")
        motif = motifs[motif]
    left, right = as_mol(mol), as_mol(motif)
    if left is None or right is None:
        return None
    n_left = left.GetNumAtoms()
    if not (0 <= point < n_left and 0 <= motif_point < right.GetNumAtoms()):
        return None
    if _has_h_atoms(left) or _has_h_atoms(right):
        return _attach_without_h_atoms(left, point, right, motif_point)
    rw = Chem.RWMol(Chem.CombineMols(left, right))
    site_a = _site(rw, point)
    site_b = _site(rw, n_left + motif_point)
    if site_a is None or site_b is None:
        return None
    (anchor_a, dummy_a), (anchor_b, dummy_b) = site_a, site_b
    for anchor, dummy in ((anchor_a, dummy_a), (anchor_b, dummy_b)):
        if dummy is None and not _take_hydrogen(rw, anchor):
            return None
    removed = [d for d in (dummy_a, dummy_b) if d is not None]
    rw.AddBond(anchor_a, anchor_b, _SINGLE)
    for idx in sorted(removed, reverse=True):
        rw.RemoveAtom(idx)
    out = rw.GetMol()
    with rdkit_quiet():
        try:
            Chem.SanitizeMol(out)
        except Exception:  # noqa: BLE001 - RDKit raises several types for bad valence/kekulisation
            return None
    return out


def _has_h_atoms(mol: Chem.Mol) -> bool:
    return any(a.GetAtomicNum() == 1 for a in mol.GetAtoms())


def _attach_without_h_atoms(left: Chem.Mol, point: int, right: Chem.Mol, motif_point: int) -> Chem.Mol | None:
    """`attach` for molecules holding explicit H atoms: fold them into H counts, keeping point indices."""
    mapped = []
    for mol, idx in ((left, point), (right, motif_point)):
        rw = Chem.RWMol(mol)
        rw.GetAtomWithIdx(idx).SetIntProp("_molleak_point", 1)
        with rdkit_quiet():
            try:
                clean = Chem.RemoveHs(rw.GetMol(), sanitize=False)
            except Exception:  # noqa: BLE001
                return None
        new_idx = next((a.GetIdx() for a in clean.GetAtoms() if a.HasProp("_molleak_point")), None)
        if new_idx is None:  # the point was itself an H atom
            return None
        clean.GetAtomWithIdx(new_idx).ClearProp("_molleak_point")
        mapped.append((clean, new_idx))
    (lm, lp), (rm, rp) = mapped
    if _has_h_atoms(lm) or _has_h_atoms(rm):  # Hs RemoveHs keeps (e.g. [H][H]) cannot be folded
        return None
    return attach(lm, lp, rm, rp)


def cap_points(mol: Chem.Mol | str, keep: Sequence[int] = ()) -> Chem.Mol | None:
    """Turn every dummy except those in `keep` into H and remove the Hs; None if that fails.

    The kept dummies stay in the result, in their original relative order. This is the first half
    of `finalize`; enumeration also uses it to cap a template or motif once for all its records.
    """
    m = as_mol(mol)
    if m is None:
        return None
    rw = Chem.RWMol(m)
    keep_set = set(keep)
    for atom in rw.GetAtoms():
        if atom.GetAtomicNum() == 0 and atom.GetIdx() not in keep_set:
            atom.SetAtomicNum(1)
            atom.SetIsotope(0)
            atom.SetAtomMapNum(0)
            atom.SetNoImplicit(True)
            atom.SetFormalCharge(0)
    with rdkit_quiet():
        try:
            out = Chem.RemoveHs(rw.GetMol(), sanitize=True)
        except Exception:  # noqa: BLE001 - RDKit raises several types for bad valence/kekulisation
            return None
    return out


def finalize(mol_or_smiles: Chem.Mol | str | None) -> str | None:
    """The one finalise: every `*` to H, sanitise, canonical SMILES; None on failure."""
    if mol_or_smiles is None:
        return None
    m = cap_points(mol_or_smiles)
    if m is None or m.GetNumAtoms() == 0:
        return None
    return Chem.MolToSmiles(m)


def apply_actions(
    template: Chem.Mol | str,
    actions: Sequence[tuple[int, int, int]],
    motifs: Sequence[Chem.Mol | str],
) -> Chem.Mol | None:
    """Build a molecule from a template and (p, i, j) actions (ordinals, as in pool records).

    Each action attaches point `open_points(current)[p]` to `motif_points(motifs[i])[j]`.
    Returns None if an ordinal is out of range or a step fails.
    """
    cur = as_mol(template)
    for p, i, j in actions:
        if cur is None or not 0 <= i < len(motifs):
            return None
        pts = open_points(cur)
        motif = as_mol(motifs[i])
        if motif is None:
            return None
        mpts = motif_points(motif)
        if not (0 <= p < len(pts) and 0 <= j < len(mpts)):
            return None
        cur = attach(cur, pts[p], motif, mpts[j])
    return cur
