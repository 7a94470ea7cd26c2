"""The released pretrain-gnns GCN, GraphSAGE and GAT encoders (`../shared/data/published`).

Every file loads strictly, its architecture is recognised without its name, and its embeddings equal,
to 1e-5, those of a reference written here in plain dense torch straight from the state_dict and
RDKit (no PyG, no molleak featuriser, no molleak layer). The reference is a second reading of
pretrain-gnns' `chem/model.py`; the publisher's own BatchNorm statistics are a third, independent
check (their running mean is the mean of each layer's output on the training molecules).

The files are not part of the project: the tests that need them skip when they are absent.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from molleak.data.featurize import collate, featurize_smiles
from molleak.errors import CheckpointError
from molleak.models.base import build_encoder
from molleak.models.checkpoint import encoder_parameter_count, load_encoder

PUBLISHED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "published"
FILES = [f"{arch}_{recipe}.pth" for arch in ("gcn", "graphsage", "gat")
         for recipe in ("contextpred", "supervised", "supervised_contextpred")]
needs_published = pytest.mark.skipif(
    not all((PUBLISHED / f).is_file() for f in FILES),
    reason="the published pretrain-gnns encoders (../shared/data/published/*.pth) are not present")


@pytest.fixture(scope="module")
def molecules() -> list[str]:
    from molleak.data.smiles_io import read_smiles

    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "moses_train_3k.smi"
    return read_smiles(fixture, canonicalize=False).smiles


# ---------------------------------------------------------------------------------------------
# the reference: one molecule at a time, dense adjacency, from the raw state_dict


_BOND = {"SINGLE": 0, "DOUBLE": 1, "TRIPLE": 2, "AROMATIC": 3}
_DIR = {"NONE": 0, "ENDUPRIGHT": 1, "ENDDOWNRIGHT": 2}
_CHIRAL = {"CHI_UNSPECIFIED": 0, "CHI_TETRAHEDRAL_CW": 1, "CHI_TETRAHEDRAL_CCW": 2}


def _graph(smiles: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Atom type and chirality indices [n], bond type and direction [n, n] (self-loop: type 4, dir 0),
    adjacency with self-loops [n, n], as pretrain-gnns' `mol_to_graph_data_obj_simple` reads them."""
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles)
    n = mol.GetNumAtoms()
    atom = torch.tensor([a.GetAtomicNum() - 1 for a in mol.GetAtoms()])
    chiral = torch.tensor([_CHIRAL[str(a.GetChiralTag())] for a in mol.GetAtoms()])
    btype = torch.full((n, n), 4)
    bdir = torch.zeros(n, n, dtype=torch.long)
    adj = torch.eye(n, dtype=torch.float64)
    for b in mol.GetBonds():
        i, j = b.GetBeginAtomIdx(), b.GetEndAtomIdx()
        for u, v in ((i, j), (j, i)):
            btype[u, v], bdir[u, v], adj[u, v] = _BOND[str(b.GetBondType())], _DIR[str(b.GetBondDir())], 1.0
    return atom, chiral, torch.stack([btype, bdir]), adj


def _conv(arch: str, sd: dict, layer: int, h: torch.Tensor, bonds: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
    p = {k.split(f"gnns.{layer}.", 1)[1]: v for k, v in sd.items() if k.startswith(f"gnns.{layer}.")}
    e = p["edge_embedding1.weight"][bonds[0]] + p["edge_embedding2.weight"][bonds[1]]  # [n, n, width]: e[i, j]
    deg = adj.sum(1)
    if arch in ("gcn", "graphsage"):
        x = h @ p["linear.weight"].T + p["linear.bias"]
        msg = x[None, :, :] + e  # msg[i, j] = x_j + e_ij
        if arch == "gcn":
            norm = adj / torch.sqrt(deg[:, None] * deg[None, :])
            return (norm[:, :, None] * msg).sum(1)
        return F.normalize((adj[:, :, None] * msg).sum(1) / deg[:, None], p=2, dim=-1)
    heads = p["att"].shape[1]
    dim = h.shape[1]
    x = (h @ p["weight_linear.weight"].T + p["weight_linear.bias"]).view(-1, heads, dim)
    msg = x[None, :, :, :] + e.view(e.shape[0], e.shape[1], heads, dim)  # [i, j, head, dim]
    att = p["att"][0]  # [heads, 2 dim]
    score = (x * att[:, :dim]).sum(-1)[:, None, :] + (msg * att[:, dim:]).sum(-1)  # [i, j, head]
    score = F.leaky_relu(score, 0.2).masked_fill(adj[:, :, None] == 0, float("-inf"))
    alpha = torch.softmax(score, dim=1)  # over the neighbours j of each i
    return (alpha[:, :, :, None] * msg).sum(1).mean(1) + p["bias"]


def reference_embedding(arch: str, sd: dict, smiles: str) -> torch.Tensor:
    """The mean over atoms of the last layer of a pretrain-gnns encoder, in float64."""
    sd = {k: v.double() if v.is_floating_point() else v for k, v in sd.items()}
    atom, chiral, bonds, adj = _graph(smiles)
    h = sd["x_embedding1.weight"][atom] + sd["x_embedding2.weight"][chiral]
    layers = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("gnns."))
    for layer in range(layers):
        h = _conv(arch, sd, layer, h, bonds, adj)
        bn = {k: sd[f"batch_norms.{layer}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")}
        h = (h - bn["running_mean"]) / torch.sqrt(bn["running_var"] + 1e-5) * bn["weight"] + bn["bias"]
        if layer < layers - 1:
            h = torch.relu(h)
    return h.mean(0)


# ---------------------------------------------------------------------------------------------
# without the files


@pytest.mark.parametrize(("name", "config"), [
    ("gcn", {}), ("gcn", {"num_layers": 2, "emb_dim": 7}), ("graphsage", {"num_layers": 3, "emb_dim": 16}),
    ("gat", {}), ("gat", {"num_layers": 2, "emb_dim": 8, "heads": 3}),
])
def test_parameter_count_of_the_new_encoders_is_exact(name, config):
    enc = build_encoder(name, config)
    assert encoder_parameter_count(name, config) == sum(p.numel() for p in enc.parameters())


@pytest.mark.parametrize("arch", ["gcn", "graphsage", "gat"])
def test_small_encoders_match_the_reference(arch, molecules):
    torch.manual_seed(1)
    config = {"num_layers": 3, "emb_dim": 12, **({"heads": 3} if arch == "gat" else {})}
    enc = build_encoder(arch, config).double().eval()
    with torch.no_grad():  # trained-looking BatchNorm statistics, so that they matter
        for bn in enc.batch_norms:
            bn.running_mean.normal_()
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.normal_()
            bn.bias.normal_()
    smiles = molecules[:8]
    with torch.no_grad():
        ours = enc.graph_embeddings(collate([featurize_smiles(s) for s in smiles]))
    ref = torch.stack([reference_embedding(arch, enc.state_dict(), s) for s in smiles])
    torch.testing.assert_close(ours, ref, atol=1e-9, rtol=1e-9)


def test_gcn_and_graphsage_are_told_apart_or_asked_for(tmp_path):
    gcn = build_encoder("gcn", {"num_layers": 2, "emb_dim": 8})
    raw = tmp_path / "untrained.pth"
    torch.save(gcn.state_dict(), raw)  # untrained statistics: no evidence either way
    with pytest.raises(CheckpointError, match=r"untrained.pth is a GCN or a GraphSAGE .* --arch gcn or --arch graphsage"):
        load_encoder(raw)
    enc, prov = load_encoder(raw, arch="graphsage")
    assert type(enc).__name__ == "GraphSAGEEncoder" and prov["architecture_from"] == "arch"
    with pytest.raises(CheckpointError, match=r"untrained.pth is not a gat: its keys are a gcn/graphsage's"):
        load_encoder(raw, arch="gat")

    sd = gcn.state_dict()
    for layer in range(2):  # the statistics of unit vectors: sum(var + mean^2) = 1
        sd[f"batch_norms.{layer}.running_mean"] = torch.full((8,), 0.25)
        sd[f"batch_norms.{layer}.running_var"] = torch.full((8,), 0.0625)
        sd[f"batch_norms.{layer}.num_batches_tracked"] = torch.tensor(10)
    torch.save(sd, tmp_path / "sage_like.pth")
    assert load_encoder(tmp_path / "sage_like.pth")[1]["architecture"] == "graphsage"
    with pytest.raises(CheckpointError, match=r"is not a gcn: its BatchNorm statistics are a graphsage's"):
        load_encoder(tmp_path / "sage_like.pth", arch="gcn")

    mixed = {**sd, "gnns.1.mlp.0.weight": torch.zeros(16, 8)}
    torch.save(mixed, tmp_path / "mixed.pth")
    with pytest.raises(CheckpointError, match=r"mixed.pth: mixes pretrain-gnns layer types \(gcn/graphsage, gin\)"):
        load_encoder(tmp_path / "mixed.pth")


# ---------------------------------------------------------------------------------------------
# with the files


@needs_published
@pytest.mark.parametrize("name", FILES)
def test_published_file_loads_strictly_and_matches_the_reference(name, molecules):
    from molleak.models.victim import Victim

    arch = name.split("_", 1)[0]
    path = PUBLISHED / name
    raw = torch.load(path, map_location="cpu", weights_only=True)
    enc, prov = load_encoder(path)
    # recognised from its weights alone (GCN vs GraphSAGE: BatchNorm statistics), not its name
    assert prov["architecture"] == arch
    assert prov["architecture_from"] == ("keys" if arch == "gat" else "batchnorm statistics")
    assert set(enc.state_dict()) == set(raw)
    assert enc.config()["num_layers"] == 5 and enc.config()["emb_dim"] == 300
    assert enc.config().get("heads", 2) == 2

    smiles = molecules[:20]
    emb = Victim(enc, name=name).embed(smiles)  # the production path: float32, batched, molleak featuriser
    assert emb.shape == (20, 300) and np.isfinite(emb).all()
    assert np.ptp(emb, axis=0).max() > 1e-3  # molecules are told apart
    ref = torch.stack([reference_embedding(arch, raw, s) for s in smiles]).numpy()
    with torch.no_grad():
        ours64 = enc.double().graph_embeddings(collate([featurize_smiles(s) for s in smiles])).numpy()
    assert np.abs(ours64 - ref).max() <= 1e-5, np.abs(ours64 - ref).max()  # the same function
    # float32 rounding through five layers (GAT pre-BatchNorm values reach the hundreds): 2e-5 seen
    assert np.abs(emb - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max()), np.abs(emb - ref).max()


@needs_published
@pytest.mark.parametrize("name", [pytest.param(f, marks=pytest.mark.xfail(
    strict=True, reason="gat_supervised_contextpred's layer-0 statistics match no variant of the GAT layer tried "
                        "(swapped attention order, bond term on both ends, uniform attention, summed heads): "
                        "our outputs are about 2x its running mean; its 8 siblings match")) if f.startswith(
    "gat_supervised_contextpred") else f for f in FILES])
def test_first_layer_output_matches_the_publishers_batchnorm_statistics(name, molecules):
    """The publisher's `batch_norms.0.running_mean` is the mean of layer 0's output over its training
    molecules: our layer 0 on 300 drug-like molecules must reproduce it (r >= 0.99, slope 1 +- 5%).
    Swapping the attention's [x_i, x_j] order gives r 0.93, slope 0.74 on gat_supervised."""
    enc, _ = load_encoder(PUBLISHED / name)
    batch = collate([featurize_smiles(s) for s in molecules[:300]])
    with torch.no_grad():
        out = enc.gnns[0](enc.embed_atoms(batch.x), batch.edge_index, batch.edge_attr).mean(0).double()
    rm = enc.batch_norms[0].running_mean.double()
    r = float(torch.corrcoef(torch.stack([out, rm]))[0, 1])
    slope = float((out * rm).sum() / (rm * rm).sum())
    assert r >= 0.99 and abs(slope - 1) <= 0.05, (r, slope)


@needs_published
def test_import_victim_records_an_unknown_training_set(tmp_path, molecules, capsys):
    from molleak.cli.main import main
    from molleak.models.victim import Victim

    out = tmp_path / "gat.pt"
    assert main(["import-victim", str(PUBLISHED / "gat_supervised.pth"), "--out", str(out)]) == 0
    line = capsys.readouterr().out
    assert "5x300 GAT (2 heads), strategy supervised, training set unknown; published: supervised" in line
    victim = Victim.from_checkpoint(out)
    prov = victim.provenance
    assert prov["training_set"] == "unknown" and prov["architecture"] == "gat"
    assert "chembl_filtered" in prov["published_training_data"]
    np.testing.assert_array_equal(victim.embed(molecules[:5]), Victim.from_checkpoint(PUBLISHED / "gat_supervised.pth")
                                  .embed(molecules[:5]))

    renamed = tmp_path / "gcn_contextpred.pth"  # a published name on other weights: no description
    shutil.copy(PUBLISHED / "graphsage_contextpred.pth", renamed)
    assert main(["import-victim", str(renamed), "--out", str(tmp_path / "s.pt")]) == 0
    assert "GraphSAGE, strategy imported, training set unknown)" in capsys.readouterr().out
    assert "published_training_data" not in Victim.from_checkpoint(tmp_path / "s.pt").provenance
    assert main(["import-victim", str(renamed), "--arch", "gcn", "--out", str(tmp_path / "g.pt")]) == 2
    assert "is not a gcn: its BatchNorm statistics are a graphsage's" in capsys.readouterr().err


@needs_published
def test_probe_takes_published_and_imported_victims(tmp_path, capsys):
    from molleak.cli.main import main

    imported = tmp_path / "gcn_imported.pt"
    assert main(["-q", "import-victim", str(PUBLISHED / "gcn_supervised.pth"), "--out", str(imported)]) == 0
    js = tmp_path / "probe.json"
    assert main(["probe", "--victims", str(PUBLISHED / "gcn_supervised.pth"), str(imported), "--targets", "freesolv",
                 "--n-bbb", "150", "--n-train", "all", "--random-seeds", "2", "--threads", "1", "--json", str(js)]) == 0
    out = capsys.readouterr().out
    assert "multiplicity: 2 comparisons (2 victims x 1 probes)" in out
    res = json.loads(js.read_text())
    rows = {r["victim"]: r for r in res["rows"]}
    assert set(rows) == {"gcn_supervised", "gcn_imported"} and rows["gcn_supervised"]["encoder"] == "gcn"
    assert rows["gcn_supervised"]["trained"] == rows["gcn_imported"]["trained"]  # the same weights
    assert rows["gcn_supervised"]["random"] == rows["gcn_imported"]["random"]  # one set of draws per architecture
    assert main(["probe", "--victims", str(imported), "--targets", "logp"]) == 2
    assert "give its directory (--data)" in capsys.readouterr().err


@needs_published
@pytest.mark.slow
def test_audit_of_a_published_victim_without_its_training_set(tmp_path, capsys):
    """`molleak audit --victim`: the attack runs, its top-K is compared with the prior's, and the
    numbers that need the training set are named as not computed (about 40 s of CPU: the tiny tier)."""
    from molleak.cli.main import main

    config = tmp_path / "a.toml"
    config.write_text('[data]\ntier = "tiny"\n[attack]\nn_templates = 10\nn_motifs = 20\n'
                      'one_step_methods = ["adapter", "prior_fp"]\ntwo_step = false\nk = 20\n')
    argv = ["-q", "audit", "--config", str(config), "--out", str(tmp_path / "out"), "--no-progress"]
    assert main([*argv, "--victim", str(PUBLISHED / "gcn_supervised.pth")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("training set unknown: the attack ran; nothing is scored against a training set")
    assert "one_step/adapter: " in out and "of its top-20 is also in one_step/prior_fp's top-20" in out
    assert "not computed (needs the victim's training set): precision of the top-K against the private set" in out
    summary = json.loads((tmp_path / "out" / "audit.json").read_text())
    assert summary["training_set"] == "unknown" and "headline" not in summary
    runs = summary["unknown_training_set"]["runs"]
    assert 0 <= runs["one_step/adapter"]["overlap_with_prior"] <= 1 and len(runs["one_step/adapter"]["top"]) == 5
    assert runs["one_step/prior_fp"]["overlap_with_prior"] is None  # the prior itself
    assert not list((tmp_path / "out" / "runs" / "one_step" / "adapter").glob("results.json"))  # nothing evaluated
    assert main([*argv, "--victim", str(PUBLISHED / "gat_supervised.pth")]) == 2  # another victim: refused
    assert "victim_checkpoint differ" in capsys.readouterr().err
