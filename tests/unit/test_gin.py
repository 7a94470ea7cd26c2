import numpy as np
import pytest
import torch

from molleak.data.featurize import collate, featurize_smiles
from molleak.errors import CheckpointError, QueryBudgetExceeded
from molleak.models.checkpoint import load_encoder, save_checkpoint
from molleak.models.gin import GINEncoder
from molleak.models.victim import Victim


def pretrain_gnns_state_dict(num_layers=5, emb_dim=300):
    """The exact key set and shapes of a published pretrain-gnns GIN checkpoint (model_gin/*.pth)."""
    sd = {
        "x_embedding1.weight": torch.randn(120, emb_dim),
        "x_embedding2.weight": torch.randn(3, emb_dim),
    }
    for layer in range(num_layers):
        p = f"gnns.{layer}."
        sd[p + "mlp.0.weight"] = torch.randn(2 * emb_dim, emb_dim)
        sd[p + "mlp.0.bias"] = torch.randn(2 * emb_dim)
        sd[p + "mlp.2.weight"] = torch.randn(emb_dim, 2 * emb_dim)
        sd[p + "mlp.2.bias"] = torch.randn(emb_dim)
        sd[p + "edge_embedding1.weight"] = torch.randn(6, emb_dim)
        sd[p + "edge_embedding2.weight"] = torch.randn(3, emb_dim)
        b = f"batch_norms.{layer}."
        sd[b + "weight"] = torch.rand(emb_dim)
        sd[b + "bias"] = torch.randn(emb_dim)
        sd[b + "running_mean"] = torch.randn(emb_dim)
        sd[b + "running_var"] = torch.rand(emb_dim) + 0.5
        sd[b + "num_batches_tracked"] = torch.tensor(1000)
    return sd


def test_published_layout_loads_strictly():
    sd = pretrain_gnns_state_dict()
    enc = GINEncoder(5, 300)
    assert set(enc.state_dict()) == set(sd)
    enc.load_state_dict(sd, strict=True)


def test_raw_state_dict_file_loads_as_victim(tmp_path):
    sd = pretrain_gnns_state_dict(num_layers=3, emb_dim=16)
    torch.save(sd, tmp_path / "contextpred.pth")
    v = Victim.from_checkpoint(tmp_path / "contextpred.pth")
    assert v.dim == 16 and v.provenance["strategy"] == "imported"
    assert torch.equal(v.encoder.gnns[2].mlp[0].weight, sd["gnns.2.mlp.0.weight"])
    # a `gnn.` prefix (as saved from a wrapper model) is stripped
    torch.save({"gnn." + k: t for k, t in sd.items()}, tmp_path / "wrapped.pth")
    assert Victim.from_checkpoint(tmp_path / "wrapped.pth").dim == 16


@pytest.mark.parametrize("layers,dim", [(1, 8), (2, 32), (5, 300)])
def test_shapes(layers, dim):
    enc = GINEncoder(layers, dim).eval()
    batch = collate([featurize_smiles(s) for s in ["CCO", "c1ccccc1N", "C"]])
    assert enc.node_embeddings(batch).shape == (batch.x.shape[0], dim)
    assert enc.graph_embeddings(batch).shape == (3, dim)


def test_checkpoint_roundtrip_and_errors(tmp_path):
    enc = GINEncoder(2, 16).eval()
    save_checkpoint(tmp_path / "v.pt", enc, {"strategy": "none"})
    loaded, prov = load_encoder(tmp_path / "v.pt")
    batch = collate([featurize_smiles("CCOc1ccccc1")])
    assert torch.equal(enc.graph_embeddings(batch), loaded.graph_embeddings(batch))
    assert prov == {"strategy": "none"}
    with pytest.raises(CheckpointError, match="expected 32"):
        load_encoder(tmp_path / "v.pt", expect={"emb_dim": 32})
    (tmp_path / "corrupt.pt").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_encoder(tmp_path / "corrupt.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_encoder(tmp_path / "missing.pt")
    bad = pretrain_gnns_state_dict(2, 16)
    bad["gnns.1.mlp.0.weight"] = torch.randn(7, 16)
    torch.save(bad, tmp_path / "shape.pth")
    with pytest.raises(CheckpointError, match=r"gnns\.1\.mlp\.0\.weight has shape"):
        load_encoder(tmp_path / "shape.pth")


def test_victim_batches_caches_counts_and_budgets():
    v = Victim(GINEncoder(2, 16), batch_size=2, budget=4)
    e1 = v.embed(["CCO", "OCC", "c1ccccc1", "CCN"])
    assert e1.shape == (4, 16) and e1.dtype == np.float32
    assert np.array_equal(e1[0], e1[1])  # same canonical molecule
    assert v.queries == 3
    v.embed(["CCO"])  # cached: free
    assert v.queries == 3
    with pytest.raises(QueryBudgetExceeded, match="budget of 4"):
        v.embed(["CCCC", "CCCCC"])
    assert v.queries == 3
    # batching does not change the numbers (BatchNorm in eval mode)
    solo = Victim(v.encoder, batch_size=256).embed(["CCN"])
    np.testing.assert_allclose(solo[0], e1[3], rtol=1e-5, atol=1e-6)


def test_pyg_generated_propagate_source_is_not_left_in_the_temp_dir():
    import sys
    from pathlib import Path

    from molleak.models.pretrain_gnns_layers import GCNEncoder

    # the GIN layer no longer uses `propagate`; the GCN / GraphSAGE / GAT layers still do
    encoder = GCNEncoder(num_layers=1, emb_dim=8)
    module = sys.modules[f"{type(encoder.gnns[0]).__module__}_GCNConv_propagate"]
    assert not Path(module.__file__).exists()  # PyG writes one file per process and never removes it
