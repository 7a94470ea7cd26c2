import contextlib

import numpy as np
import torch

from molleak.models.victim import Victim
from molleak.pretrain.trainer import PretrainConfig, build_strategy, pretrain


def test_attrmask_loss_falls_and_reloads(tmp_path, moses_sample):
    cfg = PretrainConfig(strategy="attrmask", epochs=3, batch_size=64, seed=1,
                         encoder_config={"num_layers": 2, "emb_dim": 32})
    prov = pretrain(moses_sample[:500], cfg, tmp_path / "v.pt", progress=False)
    losses = prov["loss_per_epoch"]
    assert losses[-1] < 0.7 * losses[0], losses
    v1 = Victim.from_checkpoint(tmp_path / "v.pt")
    v2 = Victim.from_checkpoint(tmp_path / "v.pt")
    probe = moses_sample[500:540]
    np.testing.assert_array_equal(v1.embed(probe), v2.embed(probe))
    assert v1.provenance["strategy"] == "attrmask" and v1.provenance["n_train"] == 500
    # pre-training moved the weights away from the seeded initialisation
    torch.manual_seed(cfg.seed)
    init = Victim(build_strategy(cfg).encoder)
    assert not np.allclose(init.embed(probe), v1.embed(probe))


def test_resume_gives_same_weights_as_uninterrupted(tmp_path, moses_sample, monkeypatch):
    import molleak.pretrain.trainer as trainer

    data = moses_sample[:200]
    cfg = PretrainConfig(strategy="attrmask", epochs=2, batch_size=50, seed=3,
                         encoder_config={"num_layers": 2, "emb_dim": 16})
    pretrain(data, cfg, tmp_path / "full.pt", progress=False)
    assert not (tmp_path / "full.pt.resume.pt").exists()  # a finished run cleans up

    # interrupt the same run in its second epoch (4 batches make one epoch)
    real_build = trainer.build_strategy
    calls = {"n": 0}

    def build_then_interrupt(config, encoder=None):
        strategy = real_build(config, encoder)
        real_loss = strategy.loss

        def loss(batch):
            calls["n"] += 1
            if calls["n"] > 5:
                raise KeyboardInterrupt
            return real_loss(batch)

        strategy.loss = loss
        return strategy

    monkeypatch.setattr(trainer, "build_strategy", build_then_interrupt)
    with contextlib.suppress(KeyboardInterrupt):
        pretrain(data, cfg, tmp_path / "resumed.pt", progress=False)
    monkeypatch.setattr(trainer, "build_strategy", real_build)
    assert (tmp_path / "resumed.pt.resume.pt").exists()
    prov = pretrain(data, cfg, tmp_path / "resumed.pt", progress=False)
    assert len(prov["loss_per_epoch"]) == 2
    a = torch.load(tmp_path / "full.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "resumed.pt", weights_only=True)["state_dict"]
    for k in a:
        assert torch.equal(a[k], b[k]), k
