"""White-box access: pretext heads saved with the victim, per-molecule losses that add up to the training loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from molleak.data.featurize import FEATURIZERS
from molleak.errors import CheckpointError, MolleakError
from molleak.pretrain.base import load_strategies
from molleak.pretrain.trainer import PretrainConfig, build_strategy, featurize_all, pretrain
from molleak.pretrain.whitebox import load_strategy, loss_statistic, per_molecule_losses

TINY = {"num_layers": 2, "emb_dim": 16}
PER_MOLECULE = sorted(n for n in load_strategies().names() if load_strategies().get(n).has_loss_per_graph())


def test_the_decomposable_strategies_have_a_per_molecule_loss():
    assert {"attrmask", "graphmae", "graphcl", "simgrace", "edgepred", "regression"} <= set(PER_MOLECULE)


@pytest.mark.parametrize("name", ["attrmask", "graphmae"])
def test_per_atom_losses_average_back_to_the_batch_loss(name, moses_sample):
    """Same seed, same masks: the atom-weighted mean of the per-molecule losses is the training loss."""
    strategy = build_strategy(PretrainConfig(strategy=name, encoder_config=TINY)).eval()
    graphs = featurize_all(moses_sample[:12], "pretrain_gnns")
    batch = FEATURIZERS.get("pretrain_gnns").collate(graphs)
    torch.manual_seed(3)
    loss = strategy.loss(batch)
    torch.manual_seed(3)
    per = strategy.loss_per_graph(batch)
    torch.manual_seed(3)
    mask_counts = _mask_counts(strategy, batch)
    assert per.shape == (12,)
    assert torch.allclose((per * mask_counts).sum() / mask_counts.sum(), loss, atol=1e-6)


def _mask_counts(strategy, batch) -> torch.Tensor:
    from molleak.pretrain._common import random_node_mask

    mask = random_node_mask(batch, strategy.mask_rate)
    return torch.bincount(batch.batch[mask], minlength=batch.num_graphs).float()


def test_regression_per_molecule_loss_is_the_squared_error(moses_sample):
    strategy = build_strategy(PretrainConfig(strategy="regression", encoder_config=TINY)).eval()
    graphs = featurize_all(moses_sample[:8], "pretrain_gnns")
    y = torch.linspace(-1, 1, 8)
    batch = strategy.collate(list(zip(graphs, y.tolist(), strict=True)))
    assert torch.allclose(strategy.loss_per_graph(batch).mean(), strategy.loss(batch), atol=1e-6)


def test_heads_round_trip_and_losses_are_reproducible(tmp_path, moses_sample, one_torch_thread):
    cfg = PretrainConfig(strategy="attrmask", epochs=2, batch_size=32, seed=1, encoder_config=TINY)
    path = tmp_path / "v.pt"
    pretrain(moses_sample[:64], cfg, path, progress=False)
    strategy = load_strategy(path)
    a = per_molecule_losses(strategy, moses_sample[:40], draws=2, seed=5)
    b = per_molecule_losses(load_strategy(path), moses_sample[:40], draws=2, seed=5)
    assert np.array_equal(a, b) and np.isfinite(a).all() and (a > 0).all()
    # another model scored on the same list sees the same masks: a fresh strategy with the same
    # trained weights but a perturbed head gives different losses (the head is really used)
    with torch.no_grad():
        strategy.head.weight.add_(torch.randn_like(strategy.head.weight))
    assert not np.allclose(per_molecule_losses(strategy, moses_sample[:40], draws=2, seed=5), a)
    assert (loss_statistic(a) == -np.log(a)).all()


def test_a_checkpoint_without_heads_is_refused_clearly(tmp_path, moses_sample):
    from molleak.models.checkpoint import read_checkpoint_file, save_checkpoint
    from molleak.models.gin import GINEncoder

    cfg = PretrainConfig(strategy="attrmask", epochs=1, batch_size=32, seed=0, encoder_config=TINY)
    path = tmp_path / "v.pt"
    pretrain(moses_sample[:32], cfg, path, progress=False)
    prov = read_checkpoint_file(path)["provenance"]
    save_checkpoint(tmp_path / "old.pt", GINEncoder(**TINY), prov)  # as checkpoints were saved before heads were kept
    with pytest.raises(CheckpointError, match="without its pretext heads"):
        load_strategy(tmp_path / "old.pt")
    with pytest.raises(MolleakError, match="at least one draw"):
        per_molecule_losses(load_strategy(path), moses_sample[:4], draws=0)
