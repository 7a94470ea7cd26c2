"""Every registered pre-training strategy, on tiny data with a tiny encoder.

The tests are parametrised over the strategy registry itself, so a newly registered strategy is
tested automatically (and fails here if it cannot learn, does not move the encoder, or does not
reload exactly).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from rdkit import Chem
from rdkit.Chem import Crippen

from molleak.errors import MolleakError
from molleak.models.checkpoint import read_checkpoint_file
from molleak.models.victim import Victim
from molleak.pretrain.base import load_strategies
from molleak.pretrain.trainer import (
    COLLAPSE_SPREAD,
    PretrainConfig,
    build_strategy,
    embedding_spread,
    featurize_all,
    pretrain,
)

STRATEGY_NAMES = load_strategies().names()
TINY_GIN = {"num_layers": 2, "emb_dim": 32}
TINY_GROVER = {"hidden": 16, "heads": 1, "depth": 2}
SMALL_HPARAMS = {"molebert": {"codebook_size": 64}, "grover": {"vocab_size": 128}}
# SimGRACE's full-strength perturbation (eta = 1) on a 32-wide, 2-layer GIN leaves a target view
# nearly independent of the online one, and its loss does not fall in 35 steps; at 64 wide it does
# (3.41 -> 2.08), and at the victims' 300 wide it learns (scripts/collapse_trace.py).
SMALL_GIN = {"simgrace": {"num_layers": 2, "emb_dim": 64}}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


#: tiny configs of the strategies that bring their own encoder
TINY_OWN_ENCODER = {"grover": TINY_GROVER, "chemprop": {"d_h": 32, "depth": 2}}


def tiny_config(name: str, epochs: int = 2, **kw) -> PretrainConfig:
    own = load_strategies().get(name).encoder_name
    return PretrainConfig(strategy=name, epochs=epochs, batch_size=32, seed=0, lr=3e-3,
                          encoder=own if own in TINY_OWN_ENCODER else "gin",
                          encoder_config=TINY_OWN_ENCODER.get(own, SMALL_GIN.get(name, TINY_GIN)),
                          hparams={"ffn_hidden": 32} if name == "chemprop" else SMALL_HPARAMS.get(name, {}), **kw)


def targets_for(name: str, smiles: list[str]) -> list[float] | None:
    """Crippen logP as a stand-in regression target for supervised strategies."""
    if not load_strategies().get(name).needs_targets:
        return None
    return [Crippen.MolLogP(Chem.MolFromSmiles(s)) for s in smiles]


def test_registry_holds_the_zoo():
    """Every registered strategy is in the zoo, except those of an optional extra, audited by their own config."""
    from molleak.victims.zoo import OPTIONAL_STRATEGIES, ZOO_VICTIMS

    assert set(STRATEGY_NAMES) == set(ZOO_VICTIMS) | set(OPTIONAL_STRATEGIES)
    assert not set(OPTIONAL_STRATEGIES) & set(ZOO_VICTIMS)


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_loss_falls_on_a_tiny_set(name, moses_sample):
    smiles = moses_sample[:48]
    torch.manual_seed(0)
    strategy = build_strategy(tiny_config(name))
    items = [strategy.prepare(g) for g in featurize_all(smiles, strategy.encoder.featurizer)]
    ys = targets_for(name, smiles)
    if ys is not None:
        items = list(zip(items, ys, strict=True))
    strategy.train()
    opt = torch.optim.Adam(strategy.parameters(), lr=3e-3)

    def step() -> float:
        loss = strategy.loss(strategy.collate(items))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    def fixed_loss() -> float:  # same random draws each time, so only the weights differ
        torch.manual_seed(123)
        with torch.no_grad():
            return strategy.loss(strategy.collate(items)).item()

    strategy.begin_epoch(0, 3)  # multi-phase strategies: train the earlier phase first
    for _ in range(10):
        step()
    strategy.begin_epoch(2, 3)  # then measure the final phase, the one that trains the victim
    before = fixed_loss()
    for _ in range(25):
        step()
    after = fixed_loss()
    assert np.isfinite(after)
    assert before - after > 0.05 * abs(before), f"{name}: loss {before:.4f} -> {after:.4f}"


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_training_moves_the_encoder_and_the_checkpoint_reloads_exactly(name, moses_sample, tmp_path):
    smiles = moses_sample[100:164]
    config = tiny_config(name, epochs=2)
    torch.manual_seed(0)
    encoder = build_strategy(config).encoder
    probe = moses_sample[2000:2040]
    initial = Victim(copy.deepcopy(encoder), cache=False).embed(probe)
    out = tmp_path / f"{name}.pt"
    prov = pretrain(smiles, config, out, progress=False, init_encoder=encoder, targets=targets_for(name, smiles))
    trained = Victim(encoder, cache=False).embed(probe)
    reloaded = Victim.from_checkpoint(out, cache=False)
    assert reloaded.encoder.featurizer == encoder.featurizer
    assert np.abs(trained - initial).max() > 1e-3, f"{name}: pre-training did not change the embeddings"
    np.testing.assert_array_equal(reloaded.embed(probe), trained)
    assert prov["strategy"] == name and len(prov["loss_per_epoch"]) == 2
    assert prov["collapsed"] is False and prov["embedding_spread"] > COLLAPSE_SPREAD
    assert not out.with_name(out.name + ".resume.pt").exists()


@pytest.mark.parametrize("name", ["graphcl", "molebert", "contextpred"])
def test_interrupted_run_resumes_to_the_same_weights(name, moses_sample, tmp_path, monkeypatch):
    smiles = moses_sample[200:264]
    config = tiny_config(name, epochs=3)
    pretrain(smiles, config, tmp_path / "straight.pt", progress=False)

    cls = load_strategies().get(name)
    original = cls.begin_epoch

    def crash_at_epoch_2(self, epoch, epochs):
        if epoch == 2:
            raise KeyboardInterrupt
        original(self, epoch, epochs)

    monkeypatch.setattr(cls, "begin_epoch", crash_at_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        pretrain(smiles, config, tmp_path / "resumed.pt", progress=False)
    monkeypatch.setattr(cls, "begin_epoch", original)
    assert (tmp_path / "resumed.pt.resume.pt").exists()
    pretrain(smiles, config, tmp_path / "resumed.pt", progress=False)
    a = read_checkpoint_file(tmp_path / "straight.pt")["state_dict"]
    b = read_checkpoint_file(tmp_path / "resumed.pt")["state_dict"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_molebert_needs_a_tokenizer_phase_and_an_encoder_phase(moses_sample, tmp_path):
    with pytest.raises(MolleakError, match="more epochs"):
        pretrain(moses_sample[:40], tiny_config("molebert", epochs=1), tmp_path / "m.pt", progress=False)


def test_regression_needs_targets_and_saves_its_head(moses_sample, tmp_path):
    smiles = moses_sample[:40]
    with pytest.raises(MolleakError, match="needs training targets"):
        pretrain(smiles, tiny_config("regression"), tmp_path / "r.pt", progress=False)
    with pytest.raises(MolleakError, match="takes no training targets"):
        pretrain(smiles, tiny_config("edgepred"), tmp_path / "e.pt", progress=False, targets=[0.0] * 40)
    pretrain(smiles, tiny_config("regression"), tmp_path / "r.pt", progress=False,
             targets=targets_for("regression", smiles))
    head = read_checkpoint_file(tmp_path / "r.pt")["extra_state"]["regression_head"]
    assert head["weight"].shape == (1, TINY_GIN["emb_dim"])


def test_grover_is_its_own_encoder_not_a_gin(moses_sample, tmp_path):
    from molleak.models.grover import ATOM_FDIM, GroverEncoder

    out = tmp_path / "grover.pt"
    pretrain(moses_sample[:40], tiny_config("grover", epochs=1), out, progress=False)
    ckpt = read_checkpoint_file(out)
    assert ckpt["encoder"]["name"] == "grover" and ckpt["encoder"]["config"] == {**TINY_GROVER, "num_layers": 1}
    victim = Victim.from_checkpoint(out)
    assert isinstance(victim.encoder, GroverEncoder) and victim.encoder.featurizer == "grover"
    assert victim.dim == 2 * TINY_GROVER["hidden"]
    assert victim.encoder.atom_in.in_features == ATOM_FDIM
    assert victim.embed(["CCO", "c1ccccc1O"]).shape == (2, victim.dim)


def test_b3db_logbb_set_is_read_from_the_installed_wheel():
    from molleak.pretrain.regression import load_b3db_logbb

    smiles, y = load_b3db_logbb()
    assert len(smiles) == len(y) > 1000 and len(set(smiles)) == len(smiles)
    assert -4 < min(y) < max(y) < 3


def test_embedding_spread_flags_a_collapsed_encoder():
    rng = np.random.default_rng(0)
    varied = rng.normal(size=(50, 16))
    one_point = np.tile(rng.normal(size=16), (50, 1)) + 1e-7 * rng.normal(size=(50, 16))
    assert embedding_spread(varied) > 0.5
    assert embedding_spread(one_point) < COLLAPSE_SPREAD
    assert embedding_spread(100.0 * varied) == pytest.approx(embedding_spread(varied))  # scale-free
    with pytest.raises(MolleakError, match="at least two"):
        embedding_spread(varied[:1])


def test_a_collapsed_victim_is_recorded_in_its_provenance(moses_sample, tmp_path, monkeypatch, caplog):
    import molleak.pretrain.trainer as trainer

    # an encoder whose output ignores its input: what dead ReLUs in the last layer produce
    monkeypatch.setattr(trainer, "encoder_spread", lambda encoder, graphs: 0.0)
    prov = pretrain(moses_sample[:40], tiny_config("attrmask", epochs=1), tmp_path / "a.pt", progress=False)
    assert prov["collapsed"] is True
    assert "collapsed" in caplog.text
    assert Victim.from_checkpoint(tmp_path / "a.pt").provenance["collapsed"] is True


def test_edgepred_starts_with_unsaturated_link_logits_at_full_width(moses_sample):
    # Hu et al.'s raw inner product of BatchNorm-ed 300-wide node states starts the logits in the
    # hundreds; that is what drove our standard-tier EdgePred victims to a collapsed embedding.
    graphs = featurize_all(moses_sample[:64], "pretrain_gnns")
    losses = {}
    for scaled in (False, True):
        torch.manual_seed(0)
        config = PretrainConfig(strategy="edgepred", seed=0, hparams={"scaled": scaled})
        strategy = build_strategy(config)
        strategy.train()
        losses[scaled] = strategy.loss(strategy.collate([strategy.prepare(g) for g in graphs])).item()
    assert losses[False] > 20.0  # saturated: the raw recipe
    assert losses[True] < 5.0  # within a few times the 2 log 2 of an uninformed link predictor
    assert build_strategy(PretrainConfig(strategy="edgepred")).hparams() == {"neg_ratio": 1, "scaled": True}


def test_a_changed_recipe_version_is_not_reused(moses_sample, tmp_path, monkeypatch):
    from molleak.pretrain.edgepred import EdgePred
    from molleak.pretrain.trainer import built_with
    from molleak.victims.build import recipe_of

    config = tiny_config("edgepred", epochs=1)
    out = tmp_path / "e.pt"
    pretrain(moses_sample[:40], config, out, progress=False)
    prov = read_checkpoint_file(out)["provenance"]
    assert prov["recipe_version"] == EdgePred.recipe_version and built_with(prov, config)
    assert recipe_of(out) == config
    legacy = {k: v for k, v in prov.items() if k != "recipe_version"}  # written before versions were recorded
    assert built_with(legacy, config) is (EdgePred.recipe_version == 1)

    monkeypatch.setattr(EdgePred, "recipe_version", EdgePred.recipe_version + 1)
    assert not built_with(prov, config)
    with pytest.raises(MolleakError, match="version .* of the edgepred recipe"):
        recipe_of(out)  # a reference victim trained today would not share the victim's recipe


def test_simgrace_perturbs_the_encoder_but_not_the_projection_head(moses_sample):
    from torch.func import functional_call
    from torch_geometric.nn import global_mean_pool

    from molleak.pretrain.simgrace import _perturbed

    strategy = build_strategy(tiny_config("simgrace"))
    strategy.train()
    batch = strategy.collate([strategy.prepare(g) for g in featurize_all(moses_sample[:16], "pretrain_gnns")])
    torch.manual_seed(3)
    target = strategy.perturbed_view(batch)
    torch.manual_seed(3)
    h = functional_call(strategy.encoder, _perturbed(strategy.encoder, strategy.eta), (batch,))
    with torch.no_grad():
        expected = strategy.proj(global_mean_pool(h, batch.batch, size=batch.num_graphs))
    torch.testing.assert_close(target, expected)
    with torch.no_grad():
        assert (target - strategy.proj(strategy.encoder.graph_embeddings(batch))).abs().max() > 1e-3  # perturbed
