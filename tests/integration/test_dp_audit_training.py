"""The one-run DP audit on real DP-SGD training: the bound stays below the accountant's epsilon, and a
wrong noise scale (the bug it exists to catch) pushes it above."""

from __future__ import annotations

import pytest

pytest.importorskip("dp_accounting", reason="dp-accounting is not installed (pip install 'molleak[dp]')")

import molleak.pretrain.dp as dp_module  # noqa: E402
from molleak.evaluate import dp_audit  # noqa: E402
from molleak.models.checkpoint import read_checkpoint_file  # noqa: E402
from molleak.pretrain.trainer import PretrainConfig, pretrain  # noqa: E402

pytestmark = pytest.mark.slow  # two DP-SGD runs of 300 epochs with per-molecule gradients (about a minute each)

CLAIMED_EPSILON = 0.1
DELTA = 1e-5


def _audit(moses_sample, out) -> tuple[float, float]:
    canaries = moses_sample[2000:2048]
    included = dp_audit.canary_inclusion(len(canaries), 0)
    cfg = PretrainConfig(strategy="edgepred", epochs=300, batch_size=8, lr=1e-2, seed=3,
                         encoder_config={"num_layers": 2, "emb_dim": 32},
                         dp={"epsilon": CLAIMED_EPSILON, "delta": DELTA, "max_grad_norm": 1.0})
    pretrain([c for c, i in zip(canaries, included, strict=True) if i], cfg, out, progress=False, resume=False)
    spent = read_checkpoint_file(out)["provenance"]["dp"]["epsilon_spent"]
    scores = dp_audit.loss_drop_scores(str(out), canaries, draws=4, seed=1)
    return dp_audit.audit(scores, included, DELTA)["epsilon_lower_bound"], spent


def test_dp_victim_bound_stays_below_the_accountants_epsilon(moses_sample, tmp_path, one_torch_thread):
    bound, spent = _audit(moses_sample, tmp_path / "dp.pt")
    assert spent <= CLAIMED_EPSILON + 1e-6
    assert bound <= spent


def test_a_wrong_noise_scale_is_caught(moses_sample, tmp_path, one_torch_thread, monkeypatch):
    # the bug: noise calibrated and accounted for epsilon 0.1 but never added to the gradient sum
    real = dp_module.noisy_clipped_sum

    def without_noise(strategy, items, params, max_norm, std, generator):
        return real(strategy, items, params, max_norm, 0.0 * std, generator)

    monkeypatch.setattr(dp_module, "noisy_clipped_sum", without_noise)
    bound, spent = _audit(moses_sample, tmp_path / "broken.pt")
    assert spent <= CLAIMED_EPSILON + 1e-6  # the accountant still claims 0.1 ...
    assert bound > spent  # ... and the audit shows the training is not 0.1-DP
