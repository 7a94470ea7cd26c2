"""GraphCL (You et al. 2020): two stochastic augmentations of each molecule, projection head, NT-Xent."""

from __future__ import annotations

import numpy as np
import torch

from molleak.data.featurize import FEATURIZERS, MASK_ATOM_INDEX, MolGraph
from molleak.errors import MolleakError
from molleak.models.base import GraphEncoder
from molleak.pretrain._common import nt_xent, nt_xent_rows, numpy_rng, projection_head, subgraph
from molleak.pretrain.base import STRATEGIES, PretrainStrategy


def drop_nodes(g: MolGraph, ratio: float, rng: np.random.Generator) -> MolGraph:
    """Remove `ratio` of the atoms (and their bonds) at random; at least one atom stays."""
    n = g.num_nodes
    drop = min(int(n * ratio), n - 1)
    keep = np.ones(n, dtype=bool)
    keep[rng.choice(n, drop, replace=False)] = False
    return subgraph(g, keep)


def permute_edges(g: MolGraph, ratio: float, rng: np.random.Generator) -> MolGraph:
    """Remove `ratio` of the bonds at random (both directions; GraphCL's chemistry variant only removes)."""
    nb = g.edge_index.shape[1] // 2
    drop = int(nb * ratio)
    keep_bond = np.ones(nb, dtype=bool)
    keep_bond[rng.choice(nb, drop, replace=False)] = False
    keep = np.repeat(keep_bond, 2)  # the featuriser stores each bond as two consecutive directed edges
    return MolGraph(g.x, g.edge_index[:, keep], g.edge_attr[keep])


def mask_nodes(g: MolGraph, ratio: float, rng: np.random.Generator) -> MolGraph:
    """Replace `ratio` of the atoms' features by the mask token."""
    n = g.num_nodes
    x = g.x.copy()
    idx = rng.choice(n, int(n * ratio), replace=False)
    x[idx, 0] = MASK_ATOM_INDEX
    x[idx, 1] = 0
    return MolGraph(x, g.edge_index, g.edge_attr)


def random_subgraph(g: MolGraph, ratio: float, rng: np.random.Generator) -> MolGraph:
    """Keep a connected subgraph of (1 - ratio) of the atoms grown from a random atom by random expansion."""
    n = g.num_nodes
    target = max(1, int(n * (1 - ratio)))
    src, dst = g.edge_index
    chosen = {int(rng.integers(n))}
    frontier = set(dst[np.isin(src, list(chosen))].tolist()) - chosen
    while len(chosen) < target and frontier:
        nxt = sorted(frontier)[int(rng.integers(len(frontier)))]
        chosen.add(nxt)
        frontier |= set(dst[src == nxt].tolist())
        frontier -= chosen
    keep = np.zeros(n, dtype=bool)
    keep[list(chosen)] = True
    return subgraph(g, keep)


AUGMENTATIONS = {"dropN": drop_nodes, "permE": permute_edges, "maskN": mask_nodes, "subgraph": random_subgraph}


@STRATEGIES.register("graphcl")
class GraphCL(PretrainStrategy):
    """Contrast two augmented views of each molecule.

    Args:
        augmentations: the pool each view draws its augmentation from, once per batch and view
            (GraphCL's "random" mode); names from `AUGMENTATIONS`.
        aug_ratio: strength of every augmentation.
        temperature: NT-Xent temperature.
    """

    name = "graphcl"

    def __init__(self, encoder: GraphEncoder, augmentations: list[str] | None = None, aug_ratio: float = 0.2,
                 temperature: float = 0.1):
        augmentations = list(augmentations or ["dropN", "permE", "maskN", "subgraph"])
        unknown = [a for a in augmentations if a not in AUGMENTATIONS]
        if unknown:
            raise MolleakError(f"unknown GraphCL augmentation {unknown[0]!r}; choose from {', '.join(AUGMENTATIONS)}")
        super().__init__(encoder, augmentations=augmentations, aug_ratio=aug_ratio, temperature=temperature)
        self.augmentations, self.aug_ratio, self.temperature = augmentations, aug_ratio, temperature
        self.proj = projection_head(encoder.emb_dim)

    def collate(self, items: list[MolGraph]):
        rng = numpy_rng()
        coll = FEATURIZERS.get(self.encoder.featurizer).collate
        views = []
        for _ in range(2):
            aug = AUGMENTATIONS[self.augmentations[int(rng.integers(len(self.augmentations)))]]
            views.append(coll([aug(g, self.aug_ratio, rng) for g in items]))
        return tuple(views)

    def loss(self, batch) -> torch.Tensor:
        v1, v2 = batch
        z1 = self.proj(self.encoder.graph_embeddings(v1))
        z2 = self.proj(self.encoder.graph_embeddings(v2))
        return nt_xent(z1, z2, self.temperature)

    def loss_per_graph(self, batch) -> torch.Tensor:
        v1, v2 = batch
        z1 = self.proj(self.encoder.graph_embeddings(v1))
        z2 = self.proj(self.encoder.graph_embeddings(v2))
        return nt_xent_rows(z1, z2, self.temperature)
