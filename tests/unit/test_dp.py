"""Graph-level DP-SGD pre-training (molleak.pretrain.dp): per-molecule gradients, clipping, accounting, training."""

from __future__ import annotations

import pickle
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch

dp_accounting = pytest.importorskip("dp_accounting", reason="dp-accounting is not installed (pip install 'molleak[dp]')")

from molleak.data.smiles_io import read_smiles  # noqa: E402
from molleak.errors import MolleakError  # noqa: E402
from molleak.models.checkpoint import read_checkpoint_file  # noqa: E402
from molleak.pretrain.dp import (  # noqa: E402
    DPConfig,
    calibrate_noise,
    clip,
    epsilon_spent,
    freeze_batchnorm,
    molecule_gradient,
    noisy_clipped_sum,
    trainable,
)
from molleak.pretrain.trainer import (  # noqa: E402
    PretrainConfig,
    build_strategy,
    built_with,
    featurize_all,
    pretrain,
    recipe_from_provenance,
)

FIXTURE = Path(__file__).parents[1] / "fixtures" / "moses_train_3k.smi"
TINY = {"num_layers": 2, "emb_dim": 16}


@pytest.fixture(scope="module")
def smiles() -> list[str]:
    return read_smiles(FIXTURE).smiles[:100]


def _strategy(name: str, smiles: list[str], n: int, **hparams):
    """A tiny strategy in DP mode (train, BatchNorm frozen) and `n` prepared items (paired with targets if needed)."""
    torch.manual_seed(0)
    s = build_strategy(PretrainConfig(strategy=name, encoder_config=TINY, hparams=hparams))
    s.train()
    freeze_batchnorm(s)
    items = [s.prepare(g) for g in featurize_all(smiles[:n], s.encoder.featurizer)]
    if s.needs_targets:
        items = [(g, 0.1 * i) for i, g in enumerate(items)]
    return s, items


# deterministic losses, so a molecule's loss is the same function in a batch and alone:
# attrmask with every atom masked, and the regression fine-tune
DETERMINISTIC = [("attrmask", {"mask_rate": 1.0}), ("regression", {})]


@pytest.mark.parametrize(("name", "hparams"), DETERMINISTIC)
def test_per_molecule_gradients_match_single_molecule_backward_and_the_batch_jacobian(smiles, name, hparams):
    s, items = _strategy(name, smiles, 12, **hparams)
    params = trainable(s)
    ours = torch.stack([molecule_gradient(s, item, params)[0] for item in items])
    # (a) a plain loop of single-molecule .backward() passes, read from p.grad
    for i, item in enumerate(items):
        s.zero_grad(set_to_none=False)
        s.loss_per_graph(s.collate([item]))[0].backward()
        ref = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
        assert torch.allclose(ours[i], ref, atol=1e-6, rtol=0), i
    # (b) the rows of the Jacobian of the batch's per-molecule losses (one forward of all 12 molecules):
    # with BatchNorm frozen nothing of one molecule reaches another's gradient
    losses = s.loss_per_graph(s.collate(items))
    jac = torch.autograd.grad(losses, params, grad_outputs=torch.eye(len(items)), is_grads_batched=True,
                              allow_unused=True)
    rows = torch.cat([(j if j is not None else torch.zeros(len(items), *p.shape)).reshape(len(items), -1)
                      for j, p in zip(jac, params, strict=True)], dim=1)
    assert torch.allclose(ours, rows, atol=1e-6, rtol=0)


def test_each_molecules_clipped_contribution_is_bounded_by_c(smiles):
    s, items = _strategy("attrmask", smiles, 16, mask_rate=1.0)
    params = trainable(s)
    c = 1e-3
    raw = [molecule_gradient(s, item, params)[0] for item in items]
    assert min(float(g.norm()) for g in raw) > c  # clipping binds on every molecule
    for g in raw:
        assert float(clip(g, c).norm()) <= c * (1 + 1e-6)
    gen = torch.Generator().manual_seed(0)
    full, _ = noisy_clipped_sum(s, items, params, c, 0.0, gen)
    for i in range(len(items)):  # the sum with and without molecule i differ by at most C
        without, _ = noisy_clipped_sum(s, items[:i] + items[i + 1:], params, c, 0.0, gen)
        assert float((full - without).norm()) <= c * (1 + 1e-5)
    # a gradient already within the bound is left alone
    assert torch.equal(clip(raw[0], 2 * float(raw[0].norm())), raw[0])


def test_accountant_matches_dp_accountings_reference_value():
    sigma, q, steps, delta = 1.1, 0.01, 1000, 1e-5
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps)
    reference = dp_accounting.rdp.RdpAccountant().compose(event).get_epsilon(delta)
    ours = epsilon_spent(sigma, q, steps, delta)
    assert ours == pytest.approx(reference, abs=1e-9)
    assert 1.5 < ours < 2.0  # about 1.71 (dp_accounting 0.6.0)
    # calibration inverts it: the noise for that epsilon is (just above) 1.1, and stays within budget
    calibrated = calibrate_noise(reference, delta, q, steps)
    assert calibrated == pytest.approx(sigma, rel=1e-3)
    assert epsilon_spent(calibrated, q, steps, delta) <= reference


def test_dp_victim_trains_within_budget(smiles, tmp_path):
    dp = DPConfig(epsilon=8.0, delta=1e-3, max_grad_norm=1.0)
    config = PretrainConfig(strategy="attrmask", epochs=6, batch_size=25, lr=1e-2, seed=3, encoder_config=TINY)
    prov = pretrain(smiles, config, tmp_path / "a.pt", progress=False, dp=dp)
    losses = prov["loss_per_epoch"]
    assert losses[-1] < losses[0]
    rec = prov["dp"]
    assert rec["epsilon"] == 8.0 and rec["epsilon_spent"] <= 8.0 and rec["epsilon_spent"] > 7.9
    assert rec["delta"] == 1e-3 and rec["max_grad_norm"] == 1.0 and rec["noise_multiplier"] > 0
    assert rec["sampling"] == "poisson" and rec["accountant"].startswith("rdp")
    assert rec["steps"] == 6 * 4 and rec["sampling_rate"] == pytest.approx(0.25)
    ckpt = read_checkpoint_file(tmp_path / "a.pt")
    state = ckpt["state_dict"]
    # BatchNorm never saw the data: its running statistics are the initial ones
    assert torch.equal(state["batch_norms.0.running_mean"], torch.zeros(16))
    assert torch.equal(state["batch_norms.0.running_var"], torch.ones(16))
    assert int(state["batch_norms.0.num_batches_tracked"]) == 0
    # the recipe carries the DP target, so a DP victim is never reused for a non-DP recipe and back
    dp_config = replace(config, dp=dp.model_dump())
    assert built_with(ckpt["provenance"], dp_config) and not built_with(ckpt["provenance"], config)
    assert recipe_from_provenance(ckpt["provenance"], "v", "a shadow", "-") == dp_config


def test_dp_noise_and_sampling_are_seeded(smiles, tmp_path):
    """The same seed trains the same weights; another seed, others."""
    dp = DPConfig(epsilon=8.0, delta=1e-3, max_grad_norm=1.0)  # the noise is calibrated once (cached)
    short = PretrainConfig(strategy="attrmask", epochs=2, batch_size=25, lr=1e-2, seed=3, encoder_config=TINY)
    for name, cfg in (("b", short), ("c", short), ("d", replace(short, seed=4))):
        pretrain(smiles, cfg, tmp_path / f"{name}.pt", progress=False, dp=dp)
    b, c, d = (read_checkpoint_file(tmp_path / f"{n}.pt")["state_dict"] for n in "bcd")
    assert all(torch.equal(b[k], c[k]) for k in b)
    assert not all(torch.equal(b[k], d[k]) for k in b)


@pytest.mark.parametrize("name", ["graphcl", "simgrace", "infograph", "contextpred"])
def test_coupled_strategies_are_refused(smiles, tmp_path, name):
    config = PretrainConfig(strategy=name, epochs=1, batch_size=8, encoder_config=TINY)
    with pytest.raises(MolleakError, match=f"DP-SGD cannot train {name}: .*(other molecules|per-molecule)"):
        pretrain(smiles[:10], config, tmp_path / "x.pt", progress=False, dp=DPConfig(epsilon=1.0))
    assert not (tmp_path / "x.pt").exists()


def test_recipes_without_dp_keep_their_dict():
    config = PretrainConfig(strategy="attrmask", encoder_config=TINY)
    assert "dp" not in asdict(config)  # the recipes (and cell keys) of every existing victim are unchanged
    old_provenance = {"config": asdict(config), "recipe_version": 1}
    assert built_with(old_provenance, PretrainConfig(strategy="attrmask", encoder_config=TINY))
    with_dp = replace(config, dp={"epsilon": 2})
    assert asdict(with_dp)["dp"] == {"epsilon": 2.0, "delta": 1e-5, "max_grad_norm": 1.0, "accountant": "rdp"}
    assert "dp" not in asdict(replace(with_dp, dp=None))
    for c in (config, with_dp):  # configs travel to worker processes (plans): pickling keeps them whole
        assert pickle.loads(pickle.dumps(c)) == c and asdict(pickle.loads(pickle.dumps(c))) == asdict(c)
    with pytest.raises(MolleakError, match="DP config: delta"):
        PretrainConfig(strategy="attrmask", dp={"epsilon": 1.0, "delta": 2.0})


def test_cli_pretrain_with_dp_flags_and_config_keys(smiles, tmp_path, capsys):
    from molleak.cli.main import main

    train = tmp_path / "train.smi"
    train.write_text("\n".join(smiles[:40]) + "\n", encoding="utf-8")
    out = tmp_path / "v.pt"
    cfg = tmp_path / "pretrain.toml"
    cfg.write_text(f'strategy = "attrmask"\nsmiles = "{train}"\nout = "{out}"\nepochs = 1\nlayers = 2\nemb_dim = 8\n'
                   "batch_size = 10\nseed = 1\ndp_epsilon = 50.0\ndp_delta = 0.001\n", encoding="utf-8")
    assert main(["-q", "pretrain", "--config", str(cfg), "--dp-max-grad-norm", "0.5"]) == 0
    assert "DP-SGD epsilon" in capsys.readouterr().out
    rec = read_checkpoint_file(out)["provenance"]["dp"]
    assert (rec["epsilon"], rec["delta"], rec["max_grad_norm"]) == (50.0, 0.001, 0.5)
    assert rec["epsilon_spent"] <= 50.0
    # refused: a DP setting without the target, and a contrastive strategy (one error line, exit 2)
    for args, why in ((["--strategy", "attrmask", "--dp-delta", "1e-5"], "need --dp-epsilon"),
                      (["--strategy", "graphcl", "--dp-epsilon", "1"], "DP-SGD cannot train graphcl")):
        code = main(["-q", "pretrain", "--smiles", str(train), "--out", str(tmp_path / "x.pt"), *args])
        err = capsys.readouterr().err
        assert code == 2 and why in err and "Traceback" not in err
