"""The policy: a small GIN over the current molecule and autoregressive, masked action heads.

State encoding: the current molecule *with* its `*` points as nodes (atom features below; a dummy
atom has atomic-number class 0), a few GIN layers (torch_geometric `GINConv`, undirected edges),
mean pooling for the graph embedding g, and a per-step embedding (how many motifs were attached).

Heads, applied in order, each masked so that only valid choices get probability:

1. template (episode start only): a learned logit per template, masked to the allowed ones;
2. point: an MLP on [h(point node); g] per open point of the molecule;
3. motif: q(point) . E_motif + b, over all motifs;
4. motif point: q'(point, motif) . E_slot over the chosen motif's points (padding masked).

A value head V([g; step]) is the critic. Sampling uses an explicit `torch.Generator`, so one seed
gives one trajectory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from rdkit import Chem
from torch import nn
from torch_geometric.nn import GINConv, global_mean_pool

from molleak.attack.search.env import ActionSpace, Episode
from molleak.candidates.assemble import open_points

_ELEMENTS = (0, 6, 7, 8, 9, 15, 16, 17, 35, 53)  # dummy, C N O F P S Cl Br I; anything else: "other"
_ELEMENT_INDEX = {z: k for k, z in enumerate(_ELEMENTS)}
N_ATOM_FEATURES = len(_ELEMENTS) + 1 + 2 + 6 + 3 + 4


def atom_features(mol: Chem.Mol) -> np.ndarray:
    """Per atom: element one-hot (dummy first), aromatic, in ring, degree 0-5, charge -1/0/+1, Hs 0-3."""
    n = mol.GetNumAtoms()
    x = np.zeros((n, N_ATOM_FEATURES), dtype=np.float32)
    base_degree = len(_ELEMENTS) + 3
    base_charge = base_degree + 6
    base_h = base_charge + 3
    for a in mol.GetAtoms():
        k = a.GetIdx()
        x[k, _ELEMENT_INDEX.get(a.GetAtomicNum(), len(_ELEMENTS))] = 1.0
        x[k, len(_ELEMENTS) + 1] = float(a.GetIsAromatic())
        x[k, len(_ELEMENTS) + 2] = float(a.IsInRing())
        x[k, base_degree + min(a.GetDegree(), 5)] = 1.0
        x[k, base_charge + int(np.clip(a.GetFormalCharge(), -1, 1)) + 1] = 1.0
        x[k, base_h + min(a.GetTotalNumHs(), 3)] = 1.0
    return x


def _edge_index(mol: Chem.Mol) -> np.ndarray:
    pairs = [(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in mol.GetBonds()]
    if not pairs:
        return np.zeros((2, 0), dtype=np.int64)
    e = np.asarray(pairs, dtype=np.int64).T
    return np.concatenate([e, e[::-1]], axis=1)  # both directions: undirected message passing


@dataclass
class StateBatch:
    """Episodes' current molecules as one graph batch, with their open points padded."""

    x: torch.Tensor
    edge_index: torch.Tensor
    batch: torch.Tensor
    points: torch.Tensor  # [B, P] global node index of each open point (0 where padded)
    point_mask: torch.Tensor  # [B, P]
    step: torch.Tensor  # [B] motifs attached so far

    @classmethod
    def build(cls, episodes: list[Episode]) -> StateBatch:
        xs, es, bs, pts = [], [], [], []
        offset = 0
        for b, ep in enumerate(episodes):
            xs.append(atom_features(ep.mol))
            es.append(_edge_index(ep.mol) + offset)
            bs.append(np.full(ep.mol.GetNumAtoms(), b, dtype=np.int64))
            pts.append([offset + p for p in open_points(ep.mol)])
            offset += ep.mol.GetNumAtoms()
        width = max(1, max(len(p) for p in pts))
        points = np.zeros((len(episodes), width), dtype=np.int64)
        mask = np.zeros((len(episodes), width), dtype=bool)
        for b, p in enumerate(pts):
            points[b, : len(p)] = p
            mask[b, : len(p)] = True
        return cls(torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(es, axis=1)),
                   torch.from_numpy(np.concatenate(bs)), torch.from_numpy(points), torch.from_numpy(mask),
                   torch.tensor([len(ep.steps) for ep in episodes], dtype=torch.long))


def _mlp(i: int, h: int, o: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(i, h), nn.ReLU(), nn.Linear(h, o))


def _masked_logits(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return logits.masked_fill(~mask, torch.finfo(logits.dtype).min)


@dataclass
class ActOutput:
    """Sampled actions and what the update needs."""

    actions: list[tuple[int, int, int]]
    log_prob: torch.Tensor  # [B] sum over the three heads
    entropy: torch.Tensor  # [B] sum over the three heads
    value: torch.Tensor  # [B]


class PolicyNet(nn.Module):
    """GIN state encoder, three autoregressive masked heads, a template head and a critic.

    Args:
        space: the action space (numbers of templates, motifs, motif points).
        hidden: width of the GIN and the heads.
        layers: GIN layers.
        max_steps: episode length (for the step embedding).
    """

    def __init__(self, space: ActionSpace, hidden: int = 64, layers: int = 3, max_steps: int = 2):
        super().__init__()
        self.n_motifs, self.max_pts = space.n_motifs, space.max_motif_points
        self.register_buffer("slot_offset", torch.from_numpy(space.slot_offset), persistent=False)
        self.register_buffer("motif_n_points", torch.from_numpy(space.motif_n_points), persistent=False)
        allowed = torch.zeros(space.n_templates, dtype=torch.bool)
        allowed[space.allowed_templates] = True
        self.register_buffer("template_allowed", allowed, persistent=False)
        self.embed_in = nn.Linear(N_ATOM_FEATURES, hidden)
        self.convs = nn.ModuleList(GINConv(_mlp(hidden, hidden, hidden), train_eps=True) for _ in range(layers))
        self.step_emb = nn.Embedding(max_steps + 1, hidden)
        self.template_logits = nn.Parameter(torch.zeros(space.n_templates))
        self.point_head = _mlp(3 * hidden, hidden, 1)
        self.motif_query = _mlp(3 * hidden, hidden, hidden)
        self.motif_emb = nn.Embedding(space.n_motifs, hidden)
        self.motif_bias = nn.Parameter(torch.zeros(space.n_motifs))
        self.slot_query = _mlp(4 * hidden, hidden, hidden)
        self.slot_emb = nn.Embedding(space.n_slots, hidden)
        self.value_head = _mlp(2 * hidden, hidden, 1)

    def encode(self, s: StateBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Node embeddings [N, h] and state embeddings [B, 2h] (graph mean ++ step)."""
        h = self.embed_in(s.x)
        for conv in self.convs:
            h = h + torch.relu(conv(h, s.edge_index))
        g = global_mean_pool(h, s.batch, size=len(s.step))
        return h, torch.cat([g, self.step_emb(s.step.clamp(max=self.step_emb.num_embeddings - 1))], dim=1)

    def template_distribution(self) -> torch.distributions.Categorical:
        return torch.distributions.Categorical(logits=_masked_logits(self.template_logits, self.template_allowed))

    def act(self, s: StateBatch, generator: torch.Generator | None = None,
            forced: list[tuple[int, int, int]] | None = None) -> ActOutput:
        """Sample (point, motif, motif point) per state, autoregressively, with masks.

        Args:
            s: the states.
            generator: the sampling generator (seeded by the caller).
            forced: evaluate these actions instead of sampling (log-probs of given actions).
        """
        h, g = self.encode(s)
        bsz = g.shape[0]
        rows = torch.arange(bsz)
        point_h = h[s.points]  # [B, P, h]
        point_logits = self.point_head(torch.cat([point_h, g.unsqueeze(1).expand(-1, point_h.shape[1], -1)], 2)).squeeze(2)
        d_point = torch.distributions.Categorical(logits=_masked_logits(point_logits, s.point_mask))
        p = self._pick(d_point, generator, None if forced is None else [a[0] for a in forced])
        ph = point_h[rows, p]
        q = self.motif_query(torch.cat([ph, g], 1))
        d_motif = torch.distributions.Categorical(logits=q @ self.motif_emb.weight.T + self.motif_bias)
        i = self._pick(d_motif, generator, None if forced is None else [a[1] for a in forced])
        q2 = self.slot_query(torch.cat([ph, g, self.motif_emb(i)], 1))
        k = torch.arange(self.max_pts)
        slot_mask = k.unsqueeze(0) < self.motif_n_points[i].unsqueeze(1)
        slots = (self.slot_offset[i].unsqueeze(1) + k.unsqueeze(0)).clamp(max=self.slot_emb.num_embeddings - 1)
        slot_logits = (self.slot_emb(slots) * q2.unsqueeze(1)).sum(2)
        d_slot = torch.distributions.Categorical(logits=_masked_logits(slot_logits, slot_mask))
        j = self._pick(d_slot, generator, None if forced is None else [a[2] for a in forced])
        log_prob = d_point.log_prob(p) + d_motif.log_prob(i) + d_slot.log_prob(j)
        entropy = d_point.entropy() + d_motif.entropy() + d_slot.entropy()
        value = self.value_head(g).squeeze(1)
        actions = [(int(a), int(b), int(c)) for a, b, c in zip(p.tolist(), i.tolist(), j.tolist(), strict=True)]
        return ActOutput(actions, log_prob, entropy, value)

    @staticmethod
    def _pick(dist: torch.distributions.Categorical, generator: torch.Generator | None,
              forced: list[int] | None) -> torch.Tensor:
        if forced is not None:
            return torch.tensor(forced, dtype=torch.long)
        return torch.multinomial(dist.probs, 1, generator=generator).squeeze(1)
