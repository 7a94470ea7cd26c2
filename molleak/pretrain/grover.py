"""GROVER pre-training (Rong et al. 2020): contextual property prediction and functional-motif prediction.

Contextual property: each atom's 1-hop context key (its element and the sorted counts of
neighbour-element/bond-type pairs, e.g. `C_C-SINGLE2_O-DOUBLE1`) is classified over a vocabulary
built from the training set in order (keys beyond `vocab_size - 1` share an `<other>` class),
from both the node-view and the edge-view atom embeddings. Motif: which of RDKit's 85 fragment
counters (`rdkit.Chem.Fragments.fr_*`) are non-zero, predicted from each view's pooled embedding.
GROVER's dissimilarity term keeps the two views' predictions consistent.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch
import torch.nn.functional as F
from rdkit import Chem
from rdkit.Chem import Fragments
from torch import nn
from torch_geometric.nn import global_mean_pool

from molleak.chem import rdkit_quiet
from molleak.models.base import GraphEncoder
from molleak.models.grover import GroverGraph, collate_grover
from molleak.pretrain.base import STRATEGIES, PretrainStrategy

MOTIF_FUNCTIONS = [getattr(Fragments, n) for n in sorted(dir(Fragments)) if n.startswith("fr_")]
_BOND_NAME = ("SINGLE", "DOUBLE", "TRIPLE", "AROMATIC", "OTHER")


def atom_context_keys(g: GroverGraph) -> list[str]:
    """GROVER's k=1 atom context keys of one molecule."""
    counts = [Counter() for _ in range(g.num_nodes)]
    for (u, v), bt in zip(g.edge_index.T, g.bond_type, strict=True):
        counts[v][f"{Chem.GetPeriodicTable().GetElementSymbol(int(g.atomic_num[u]))}-{_BOND_NAME[bt]}"] += 1
    sym = Chem.GetPeriodicTable().GetElementSymbol
    return [sym(int(z)) + "_" + "_".join(f"{k}{c}" for k, c in sorted(cnt.items()))
            for z, cnt in zip(g.atomic_num, counts, strict=True)]


def motif_labels(smiles: str) -> np.ndarray:
    """Presence (0/1) of each RDKit fragment motif."""
    with rdkit_quiet():
        mol = Chem.MolFromSmiles(smiles)
    return np.array([fn(mol) > 0 for fn in MOTIF_FUNCTIONS], dtype=np.float32)


@STRATEGIES.register("grover")
class GroverPretrain(PretrainStrategy):
    """Contextual-property + motif prediction from both GROVER views.

    Args:
        vocab_size: atom-context classes (including `<other>`).
        dist_weight: weight of the view-dissimilarity (prediction consistency) term.
    """

    name = "grover"
    encoder_name = "grover"

    def __init__(self, encoder: GraphEncoder, vocab_size: int = 1024, dist_weight: float = 0.1):
        super().__init__(encoder, vocab_size=vocab_size, dist_weight=dist_weight)
        self.vocab_size, self.dist_weight = vocab_size, dist_weight
        self.vocab: dict[str, int] = {"<other>": 0}
        h = encoder.config()["hidden"]
        self.av_atom, self.av_bond = nn.Linear(h, vocab_size), nn.Linear(h, vocab_size)
        self.fg_atom, self.fg_bond = nn.Linear(h, len(MOTIF_FUNCTIONS)), nn.Linear(h, len(MOTIF_FUNCTIONS))

    def prepare(self, graph: GroverGraph):
        ids = []
        for key in atom_context_keys(graph):
            if key not in self.vocab and len(self.vocab) < self.vocab_size:
                self.vocab[key] = len(self.vocab)
            ids.append(self.vocab.get(key, 0))
        return graph, np.asarray(ids, dtype=np.int64), motif_labels(graph.smiles)

    def collate(self, items):
        return (collate_grover([g for g, _, _ in items]),
                torch.from_numpy(np.concatenate([c for _, c, _ in items])),
                torch.from_numpy(np.stack([m for _, _, m in items])))

    def loss(self, batch) -> torch.Tensor:
        graphs, context, motifs = batch
        aa, ab = self.encoder.views(graphs)
        pa, pb = self.av_atom(aa), self.av_bond(ab)
        av = F.cross_entropy(pa, context) + F.cross_entropy(pb, context)
        ga = global_mean_pool(aa, graphs.batch, size=graphs.num_graphs)
        gb = global_mean_pool(ab, graphs.batch, size=graphs.num_graphs)
        fa, fb = self.fg_atom(ga), self.fg_bond(gb)
        fg = F.binary_cross_entropy_with_logits(fa, motifs) + F.binary_cross_entropy_with_logits(fb, motifs)
        dist = F.mse_loss(torch.sigmoid(fa), torch.sigmoid(fb)) + F.mse_loss(pa.softmax(-1), pb.softmax(-1))
        return av + fg + self.dist_weight * dist
