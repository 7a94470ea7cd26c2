"""The assembly environment the policy acts in (method.md section 5).

An episode starts from a template (ring system with `*` points). Each step takes an action
(p, i, j): attachment point `p` of the current molecule (an ordinal into `open_points`), motif
`i` of the vocabulary and point `j` of that motif (an ordinal into `motif_points`), and joins them
with `molleak.candidates.assemble.attach`. The episode ends after `max_steps` motifs or when no
point is open. The finished molecule, and the molecule before and after every step, are finalised
by the one shared `finalize`, so a finished episode is exactly a pool record
(`molleak.candidates.pool.CandidateRecord`) and the adapter score (sum over steps) applies to it.

Masks: a point must exist on the current molecule, a motif point must exist on the chosen motif.
Every point is a singly bonded dummy (the vocabulary checks it), so an attach that respects the
masks almost always sanitises; when it does not, the episode ends as *failed* (no molecule, not
archived, reward `failed_reward`), and the failure is counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from rdkit import Chem

from molleak.candidates.assemble import as_mol, attach, finalize, motif_points, open_points
from molleak.candidates.pool import CandidateRecord, Step
from molleak.errors import MolleakError


class ActionSpace:
    """Templates and motifs as RDKit molecules, with their points, built once from a vocabulary.

    Args:
        templates: template SMILES (plain `*` points).
        motifs: motif SMILES (labelled `[*:n]` points).
        allowed_templates: template indices episodes may start from (None: all with a point).
    """

    def __init__(self, templates: Sequence[str], motifs: Sequence[str], allowed_templates: Sequence[int] | None = None):
        self.template_smiles = list(templates)
        self.motif_smiles = list(motifs)
        self.template_mols = [as_mol(t) for t in self.template_smiles]
        self.motif_mols = [as_mol(m) for m in self.motif_smiles]
        if any(m is None for m in self.template_mols) or any(m is None for m in self.motif_mols):
            raise MolleakError("action space: a template or motif SMILES does not parse")
        self.motif_point_atoms = [motif_points(m) for m in self.motif_mols]
        self.motif_n_points = np.array([len(p) for p in self.motif_point_atoms], dtype=np.int64)
        if (self.motif_n_points == 0).any():
            raise MolleakError("action space: every motif needs at least one attachment point")
        candidates = range(len(self.template_mols)) if allowed_templates is None else allowed_templates
        for t in candidates:
            if not 0 <= int(t) < len(self.template_mols):
                raise MolleakError(f"template index {t} is out of range (the vocabulary has {len(self.template_mols)})")
        self.allowed_templates = [int(t) for t in candidates if open_points(self.template_mols[int(t)])]
        if not self.allowed_templates:
            raise MolleakError("action space: no allowed template has an attachment point")
        self.max_motif_points = int(self.motif_n_points.max())
        # slot = (motif, point) pair, numbered motif by motif: the policy embeds each slot
        self.slot_offset = np.concatenate([[0], np.cumsum(self.motif_n_points)[:-1]]).astype(np.int64)
        self._finalized: dict[tuple[str, int], str | None] = {}

    @property
    def n_templates(self) -> int:
        return len(self.template_mols)

    @property
    def n_motifs(self) -> int:
        return len(self.motif_mols)

    @property
    def n_slots(self) -> int:
        return int(self.motif_n_points.sum())

    @classmethod
    def from_vocabulary(cls, vocab, allowed_templates: Sequence[int] | None = None) -> ActionSpace:
        """Build from a `molleak.candidates.vocab.Vocabulary`."""
        return cls(vocab.templates, vocab.motifs, allowed_templates)

    def motif_final(self, i: int) -> str:
        """The finalised SMILES of motif i (its points as H), cached."""
        key = ("m", i)
        if key not in self._finalized:
            self._finalized[key] = finalize(self.motif_mols[i])
        out = self._finalized[key]
        if out is None:
            raise MolleakError(f"motif {self.motif_smiles[i]!r} does not finalise")
        return out


@dataclass
class Episode:
    """One molecule being built.

    Attributes:
        template: template index.
        mol: current molecule (with its open `*` points).
        actions: (p, i, j) per step taken.
        steps: (before, motif, after) finalised SMILES per step.
        before_final: the finalised current molecule (the next step's `before`).
        done: no further step will be taken.
        failed: a step did not sanitise (no molecule).
    """

    template: int
    mol: Chem.Mol
    before_final: str | None
    actions: list[tuple[int, int, int]] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    done: bool = False
    failed: bool = False

    @property
    def n_points(self) -> int:
        return len(open_points(self.mol))

    @property
    def smiles(self) -> str | None:
        """The finished molecule's finalised SMILES (None while unfinished or when failed)."""
        if not self.done or self.failed or not self.steps:
            return None
        return self.steps[-1].after

    def record(self) -> CandidateRecord:
        """The finished episode as a pool record."""
        if self.smiles is None:
            raise ValueError("record(): the episode is unfinished or failed")
        return CandidateRecord(self.smiles, self.template, tuple(self.actions), tuple(self.steps))


class AssemblyEnv:
    """Builds molecules motif by motif; many episodes advance together (one batch).

    Args:
        space: the action space.
        max_steps: motifs per episode (an episode also ends when no point is open).
    """

    def __init__(self, space: ActionSpace, max_steps: int):
        if max_steps < 1:
            raise MolleakError(f"steps must be at least 1, got {max_steps}")
        self.space = space
        self.max_steps = int(max_steps)
        self.n_failed = 0

    def reset(self, templates: Sequence[int]) -> list[Episode]:
        """Start one episode per template index."""
        out = []
        for t in templates:
            mol = self.space.template_mols[int(t)]
            ep = Episode(int(t), mol, finalize(mol))
            if ep.before_final is None:
                ep.done = ep.failed = True
                self.n_failed += 1
            out.append(ep)
        return out

    def valid_action(self, ep: Episode, action: tuple[int, int, int]) -> bool:
        """Whether (p, i, j) passes the masks for this episode."""
        p, i, j = action
        return 0 <= p < ep.n_points and 0 <= i < self.space.n_motifs and 0 <= j < self.space.motif_n_points[i]

    def step(self, ep: Episode, action: tuple[int, int, int]) -> None:
        """Apply one action to an unfinished episode (in place)."""
        if ep.done:
            raise ValueError("step() on a finished episode")
        if not self.valid_action(ep, action):
            raise ValueError(f"action {action} is masked out for this state")
        p, i, j = (int(a) for a in action)
        point = open_points(ep.mol)[p]
        new = attach(ep.mol, point, self.space.motif_mols[i], self.space.motif_point_atoms[i][j])
        after = finalize(new) if new is not None else None
        if new is None or after is None or ep.before_final is None:
            ep.done = ep.failed = True
            self.n_failed += 1
            return
        ep.actions.append((p, i, j))
        ep.steps.append(Step(ep.before_final, self.space.motif_final(i), after))
        ep.mol, ep.before_final = new, after
        if len(ep.steps) >= self.max_steps or not open_points(new):
            ep.done = True

    def random_action(self, ep: Episode, rng: np.random.Generator) -> tuple[int, int, int]:
        """A uniformly random valid action (uniform point, then motif, then motif point)."""
        p = int(rng.integers(ep.n_points))
        i = int(rng.integers(self.space.n_motifs))
        j = int(rng.integers(self.space.motif_n_points[i]))
        return p, i, j

    def random_templates(self, n: int, rng: np.random.Generator) -> list[int]:
        allowed = self.space.allowed_templates
        return [allowed[k] for k in rng.integers(len(allowed), size=n)]

    def random_rollouts(self, n: int, rng: np.random.Generator) -> list[Episode]:
        """n episodes played with uniformly random valid actions."""
        episodes = self.reset(self.random_templates(n, rng))
        for ep in episodes:
            while not ep.done:
                self.step(ep, self.random_action(ep, rng))
        return episodes
