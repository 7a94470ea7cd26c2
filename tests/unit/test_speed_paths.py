"""The fast query and pre-training paths give what the plain ones give.

- the GIN layer (index_select / index_add_) against the same layer on PyTorch Geometric's
  `propagate`: same embeddings, and bitwise the same gradients (trained victims do not move);
- `Victim.embed` with featurisation overlapped with the forward pass against chunk-by-chunk `_compute`;
- pre-training from the feature cache against pre-training without it: bitwise the same weights.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import pytest
import torch
from torch import nn
from torch_geometric.nn import MessagePassing

from molleak.data.featurize import SELF_LOOP_BOND_INDEX, collate, featurize_smiles
from molleak.models.checkpoint import read_checkpoint_file
from molleak.models.gin import GINConv, GINEncoder
from molleak.models.victim import Victim


class PropagateGINConv(MessagePassing):
    """The reference: the pretrain-gnns GIN layer as PyG's `propagate` writes it."""

    def __init__(self, emb_dim: int):
        super().__init__(aggr="add")
        self.mlp = nn.Sequential(nn.Linear(emb_dim, 2 * emb_dim), nn.ReLU(), nn.Linear(2 * emb_dim, emb_dim))
        self.edge_embedding1 = nn.Embedding(6, emb_dim)
        self.edge_embedding2 = nn.Embedding(3, emb_dim)

    def forward(self, x, edge_index, edge_attr):
        n = x.size(0)
        loops = torch.arange(n)
        edge_index = torch.cat([edge_index, torch.stack([loops, loops])], dim=1)
        loop_attr = torch.zeros(n, 2, dtype=edge_attr.dtype)
        loop_attr[:, 0] = SELF_LOOP_BOND_INDEX
        edge_attr = torch.cat([edge_attr, loop_attr], dim=0)
        return self.propagate(edge_index, x=x, edge_attr=self.edge_embedding1(edge_attr[:, 0])
                              + self.edge_embedding2(edge_attr[:, 1]))

    def message(self, x_j, edge_attr):
        return x_j + edge_attr

    def update(self, aggr_out):
        return self.mlp(aggr_out)


def _with_reference_layers(enc: GINEncoder) -> GINEncoder:
    ref = copy.deepcopy(enc)
    for i, layer in enumerate(enc.gnns):
        conv = PropagateGINConv(enc.emb_dim)
        conv.load_state_dict(layer.state_dict())
        ref.gnns[i] = conv
    return ref


@pytest.fixture(scope="module")
def batch(moses_sample):
    return collate([featurize_smiles(s) for s in moses_sample[:200]] + [featurize_smiles("[Na+]")])


def test_gin_layer_keeps_the_published_parameter_names():
    assert set(GINConv(8).state_dict()) == set(PropagateGINConv(8).state_dict())


def test_gin_embeddings_equal_the_propagate_reference(batch):
    torch.manual_seed(0)
    enc = GINEncoder(5, 300).eval()
    with torch.no_grad():  # perturb the BatchNorm statistics away from identity, as a trained model has
        for bn in enc.batch_norms:
            bn.running_mean.normal_(0, 0.5), bn.running_var.uniform_(0.5, 2.0)
    ref = _with_reference_layers(enc)
    with torch.inference_mode():
        got, want = enc.graph_embeddings(batch), ref.graph_embeddings(batch)
    assert float((got - want).abs().max()) <= 1e-6


def test_gin_training_gradients_are_bitwise_those_of_the_reference(batch):
    torch.manual_seed(1)
    enc = GINEncoder(3, 32).train()
    ref = _with_reference_layers(enc).train()
    out, ref_out = enc.graph_embeddings(batch), ref.graph_embeddings(batch)
    assert torch.equal(out, ref_out)
    (out ** 2).sum().backward()
    (ref_out ** 2).sum().backward()
    ref_params = dict(ref.named_parameters())
    for name, p in enc.named_parameters():
        assert torch.equal(p.grad, ref_params[name].grad), name


def test_overlapped_embed_equals_chunk_by_chunk(moses_sample):
    torch.manual_seed(2)
    victim = Victim(GINEncoder(2, 32), batch_size=16)
    smiles = moses_sample[:100]
    got = victim.embed(smiles)  # 7 chunks: each featurised in a thread during the previous forward
    assert victim.queries == 100
    queries = [victim.parse(s) for s in smiles]
    want = np.concatenate([victim._compute(queries[i : i + 16])[0] for i in range(0, 100, 16)])
    assert np.array_equal(got, want)


def _train(smiles, tmp_path, name, strategy, cache):
    from molleak.pretrain.trainer import PretrainConfig, pretrain

    config = PretrainConfig(strategy, epochs=2, batch_size=16, seed=3,
                            encoder_config={"num_layers": 2, "emb_dim": 16})
    pretrain(smiles, config, tmp_path / f"{name}.pt", progress=False, resume=False, feature_cache=cache)
    return read_checkpoint_file(tmp_path / f"{name}.pt")["state_dict"]


@pytest.mark.parametrize("strategy", ["attrmask", "graphcl", "graphmae"])
def test_training_from_the_feature_cache_is_bitwise_identical(strategy, moses_sample, tmp_path, caplog):
    smiles = moses_sample[:48]
    cache = tmp_path / "features"
    plain = _train(smiles, tmp_path, "plain", strategy, False)
    assert not cache.exists()
    first = _train(smiles, tmp_path, "first", strategy, cache)  # featurises and writes the cache
    assert len(list(cache.glob("*.npz"))) == 1
    with caplog.at_level(logging.INFO, logger="molleak.pretrain.trainer"):
        cached = _train(smiles, tmp_path, "cached", strategy, cache)  # reads it
    assert "read from the feature cache" in caplog.text
    for name, tensor in plain.items():
        assert torch.equal(tensor, first[name]) and torch.equal(tensor, cached[name]), name


def test_a_damaged_feature_cache_is_featurised_afresh(moses_sample, tmp_path, caplog):
    from molleak.pretrain.trainer import featurize_all

    smiles, cache = moses_sample[:20], tmp_path / "features"
    fresh = featurize_all(smiles, "pretrain_gnns", cache_dir=cache)
    (path,) = cache.glob("*.npz")
    path.write_bytes(path.read_bytes()[:50])
    with caplog.at_level(logging.WARNING, logger="molleak.pretrain.trainer"):
        again = featurize_all(smiles, "pretrain_gnns", cache_dir=cache)
    assert "ignoring feature cache" in caplog.text
    assert all(np.array_equal(a.x, b.x) and np.array_equal(a.edge_index, b.edge_index) for a, b in zip(fresh, again, strict=True))
    featurize_all(smiles[::-1], "pretrain_gnns", cache_dir=cache)  # another order is another set
    assert len(list(cache.glob("*.npz"))) == 2


def test_mean_pool_is_pyg_global_mean_pool_bit_for_bit():
    """The encoders pool without importing PyG: values and gradients equal `global_mean_pool`'s exactly,
    an empty graph included (its mean is 0)."""
    import torch
    from torch_geometric.nn import global_mean_pool

    from molleak.models.base import mean_pool

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(997, 300, generator=gen, dtype=torch.float32)
    index = torch.sort(torch.randint(0, 60, (997,), generator=gen)).values
    index[index == 7] = 8  # graph 7 has no atom
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours, pyg = mean_pool(a, index, 61), global_mean_pool(b, index, size=61)
    assert ours.shape == (61, 300) and torch.equal(ours, pyg) and not ours[7].any() and not ours[60].any()
    weight = torch.randn(61, 300, generator=gen)
    (ours * weight).sum().backward()
    (pyg * weight).sum().backward()
    assert torch.equal(a.grad, b.grad)
