"""Graph-level DP-SGD for pre-training: the record is a molecule (a whole graph).

Each optimiser step (Abadi et al. 2016; for molecules, Mueller et al. 2022):

- **Sampling**: Poisson. Every molecule joins a step's batch independently with probability
  q = batch_size / n, so a batch's size varies; an epoch is ceil(n / batch_size) steps. The
  accounting composes exactly that: `PoissonSampledDpEvent(q, GaussianDpEvent(sigma))` self-composed
  over all steps of the run, in Google's `dp_accounting` (RDP by default, PLD on request; no
  accounting is written here). The noise multiplier sigma is calibrated by `dp_accounting` so the
  whole run spends at most the target epsilon at the target delta.
- **Per-molecule gradients**: micro-batches of one molecule (a collated batch of one graph), one
  forward and backward each, of the strategy's `loss_per_graph`. Each gradient (all trainable
  parameters, flattened) is clipped to norm <= C, the clipped gradients are summed, Gaussian noise of
  standard deviation sigma * C is added once, and the sum is divided by the expected batch size q * n
  (not the drawn size, which depends on the data). A step with an empty draw is a noise-only step.
  A batched alternative (one forward of the batch, then the Jacobian of the per-molecule losses by
  `torch.autograd.grad(..., is_grads_batched=True)`, i.e. vmap over the backward) gives the same
  gradients, faster at batch 25 on a tiny GIN but with batch x batch work and batch x parameters
  memory (6x slower at batch 256), and it trusts `loss_per_graph` not to mix molecules, which a
  micro-batch of one guarantees by construction; `scripts/bench_dp.py` measures both (BENCHMARKS.md).
- **BatchNorm**: in train mode BatchNorm normalises each molecule by statistics of the whole batch,
  so one molecule's gradient depends on the others (clipping no longer bounds its influence), and the
  running statistics are averages of the private data released without noise. DP training therefore
  keeps every BatchNorm in eval mode with its initial running statistics (mean 0, variance 1)
  frozen: it becomes a fixed per-feature affine map whose weight and bias are trained under DP like
  any other parameter. The architecture and checkpoint format are unchanged, and the saved running
  statistics are the data-independent initial ones, so the served (eval-mode) victim computes exactly
  what was trained.
- **Refused strategies**: contrastive losses (GraphCL, SimGRACE, InfoGraph) score each molecule
  against the other molecules of its batch, so a molecule's data reach every other molecule's
  gradient and per-molecule clipping does not bound its influence; strategies without a per-molecule
  loss (ContextPred's negatives come from other molecules too) are refused likewise.

The noise comes from a torch generator seeded from (seed, epoch), so a run repeats exactly and a
resumed run matches an uninterrupted one. A seeded Mersenne Twister is not a cryptographically
secure source; a deployment that must resist an adversary who can guess the seed should draw the
seed from the OS (the default when no seed is given).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from torch import nn

from molleak.errors import MolleakError
from molleak.pretrain.base import PretrainStrategy

log = logging.getLogger(__name__)

#: strategies whose loss couples the molecules of a batch, with why DP-SGD cannot bound one molecule's influence
COUPLED = {
    "graphcl": "its NT-Xent loss scores each molecule against the other molecules of its batch",
    "simgrace": "its NT-Xent loss scores each molecule against the other molecules of its batch",
    "infograph": "its loss contrasts each molecule's atoms against the other molecules of its batch",
}


class DPConfig(BaseModel):
    """The privacy target of a DP-SGD pre-training run (what `PretrainConfig.dp` holds, as a dict)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epsilon: float = Field(gt=0, allow_inf_nan=False)
    delta: float = Field(1e-5, gt=0, lt=1)
    max_grad_norm: float = Field(1.0, gt=0, allow_inf_nan=False)
    accountant: Literal["rdp", "pld"] = "rdp"


def dp_config(value: DPConfig | dict[str, Any]) -> DPConfig:
    """A `DPConfig` from itself or its dict, with one-line errors."""
    if isinstance(value, DPConfig):
        return value
    try:
        return DPConfig.model_validate(value)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"]) or "dp"
        raise MolleakError(f"DP config: {where}: {err['msg']}") from None


def check_strategy(strategy: type[PretrainStrategy] | PretrainStrategy) -> None:
    """Refuse a strategy whose loss does not decompose per molecule (one line saying why)."""
    cls = strategy if isinstance(strategy, type) else type(strategy)
    if cls.name in COUPLED:
        raise MolleakError(
            f"DP-SGD cannot train {cls.name}: {COUPLED[cls.name]}, so clipping each molecule's gradient does not "
            "bound its influence on the update (use a strategy whose loss decomposes per molecule: attrmask, "
            "graphmae, edgepred, regression)")
    if not cls.has_loss_per_graph():
        raise MolleakError(
            f"DP-SGD cannot train {cls.name}: its loss has no per-molecule decomposition (loss_per_graph), so "
            "per-molecule clipping cannot bound one molecule's influence")


def _dp_accounting():
    try:
        import dp_accounting
    except ImportError:
        raise MolleakError("DP-SGD needs Google's dp-accounting: install molleak's `dp` extra "
                           "(pip install -e '.[dp]')") from None
    return dp_accounting


def _accountant(kind: str):
    dpa = _dp_accounting()
    if kind == "pld":
        return dpa.pld.PLDAccountant()
    return dpa.rdp.RdpAccountant()


def _event(noise_multiplier: float, sampling_rate: float, steps: int):
    dpa = _dp_accounting()
    step = dpa.PoissonSampledDpEvent(sampling_rate, dpa.GaussianDpEvent(noise_multiplier))
    return dpa.SelfComposedDpEvent(step, steps)


def epsilon_spent(noise_multiplier: float, sampling_rate: float, steps: int, delta: float,
                  accountant: str = "rdp") -> float:
    """Epsilon at `delta` of `steps` Poisson-sampled Gaussian steps, by `dp_accounting`."""
    with _quiet_absl():
        return float(_accountant(accountant).compose(_event(noise_multiplier, sampling_rate, steps)).get_epsilon(delta))


#: the smallest noise multiplier tried: below it the accounted epsilon runs to the tens and beyond, and
#: PLD's discretisation of so sharp a loss distribution does not fit in memory
MIN_NOISE = 0.3


@contextlib.contextmanager
def _quiet_absl():
    """dp_accounting's RDP logs one warning per Renyi order it cannot evaluate and drops that order (benign)."""
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        yield
    finally:
        absl.setLevel(level)


@functools.lru_cache(maxsize=64)  # pure, and seconds per call: a shadow set or a resumed run asks again
def calibrate_noise(epsilon: float, delta: float, sampling_rate: float, steps: int, accountant: str = "rdp") -> float:
    """The smallest noise multiplier (within about 1e-4 relative) whose run spends at most `epsilon` at `delta`.

    Calibrated by `dp_accounting.calibrate_dp_mechanism`; never below `MIN_NOISE` (a target that needs
    less noise gets `MIN_NOISE` and spends less than the target).
    """
    dpa = _dp_accounting()
    from dp_accounting.mechanism_calibration import NoBracketIntervalFoundError

    with _quiet_absl():
        if epsilon_spent(MIN_NOISE, sampling_rate, steps, delta, accountant) <= epsilon:
            return MIN_NOISE
        try:
            sigma = float(dpa.calibrate_dp_mechanism(
                lambda: _accountant(accountant), lambda s: _event(s, sampling_rate, steps), epsilon, delta,
                dpa.LowerEndpointAndGuess(MIN_NOISE, 2 * MIN_NOISE), tol=1e-5))
        except (ValueError, NoBracketIntervalFoundError) as exc:
            raise MolleakError(f"DP config: no noise multiplier reaches epsilon {epsilon} at delta {delta} "
                               f"over {steps} steps at sampling rate {sampling_rate:.4g} ({exc})") from None
        # brentq returns a root within its tolerance, possibly just under it: step up until within budget
        for _ in range(100):
            if epsilon_spent(sigma, sampling_rate, steps, delta, accountant) <= epsilon:
                return sigma
            sigma *= 1 + 1e-4
    raise MolleakError(f"DP config: calibrating the noise for epsilon {epsilon} did not converge")


def freeze_batchnorm(module: nn.Module) -> None:
    """Put every BatchNorm of `module` in eval mode: fixed statistics, no mixing of molecules, no updates."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def trainable(strategy: nn.Module) -> list[nn.Parameter]:
    return [p for p in strategy.parameters() if p.requires_grad]


def molecule_gradient(strategy: PretrainStrategy, item: Any, params: list[nn.Parameter]) -> tuple[torch.Tensor, float]:
    """One molecule's gradient of its `loss_per_graph` (all `params`, flattened) and its loss.

    `item` is what `strategy.prepare` returned (paired with its target for supervised strategies);
    it is collated alone, so nothing of another molecule enters the gradient.
    """
    loss = strategy.loss_per_graph(strategy.collate([item]))[0]
    if not torch.isfinite(loss):
        raise MolleakError(f"{strategy.name}: a molecule's loss became {loss.item()} under DP-SGD")
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    flat = torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params, strict=True)])
    return flat, float(loss.item())


def clip(grad: torch.Tensor, max_norm: float) -> torch.Tensor:
    """`grad` scaled down to norm <= `max_norm` (unchanged when already within)."""
    norm = float(grad.norm())
    return grad * (max_norm / norm) if norm > max_norm else grad


def noisy_clipped_sum(strategy: PretrainStrategy, items: list[Any], params: list[nn.Parameter], max_norm: float,
                      noise_std: float, generator: torch.Generator) -> tuple[torch.Tensor, float]:
    """Sum of the molecules' clipped gradients plus N(0, noise_std^2) per coordinate, and their summed loss."""
    total = torch.zeros(sum(p.numel() for p in params))
    loss_sum = 0.0
    for item in items:
        grad, loss = molecule_gradient(strategy, item, params)
        total += clip(grad, max_norm)
        loss_sum += loss
    total += torch.normal(0.0, noise_std, size=total.shape, generator=generator)
    return total, loss_sum


def _seed(*parts: int) -> int:
    return int(np.random.default_rng(list(parts)).integers(2**62))


class DPTraining:
    """The DP-SGD side of `trainer.pretrain`: calibration at the start, one epoch of noisy steps at a time.

    Args:
        strategy: the strategy module (refused if its loss couples molecules).
        dp: the privacy target.
        n: training molecules; with `batch_size` it sets the sampling rate q = batch_size / n.
        batch_size: expected molecules per step.
        epochs: epochs of the run (ceil(n / batch_size) steps each), all counted by the accountant.
        seed: the run's seed (batch draws and noise come from (seed, epoch)).
    """

    def __init__(self, strategy: PretrainStrategy, dp: DPConfig | dict[str, Any], n: int, batch_size: int,
                 epochs: int, seed: int):
        check_strategy(strategy)
        self.strategy, self.dp, self.n, self.seed = strategy, dp_config(dp), n, seed
        if n < 1:
            raise MolleakError("DP-SGD needs at least one training molecule")
        self.sampling_rate = min(1.0, batch_size / n)
        self.steps_per_epoch = math.ceil(n / batch_size)
        self.steps = epochs * self.steps_per_epoch
        if self.dp.delta >= 1 / n:
            log.warning("DP delta %g is not below 1/n = %g: the guarantee allows releasing a molecule outright",
                        self.dp.delta, 1 / n)
        self.noise_multiplier = calibrate_noise(self.dp.epsilon, self.dp.delta, self.sampling_rate, self.steps,
                                                self.dp.accountant)
        self.epsilon_spent = epsilon_spent(self.noise_multiplier, self.sampling_rate, self.steps, self.dp.delta,
                                           self.dp.accountant)
        self.params = trainable(strategy)
        log.info("DP-SGD: noise multiplier %.4f for epsilon %.4g (spent %.4g) at delta %g over %d steps, q = %.4g",
                 self.noise_multiplier, self.dp.epsilon, self.epsilon_spent, self.dp.delta, self.steps,
                 self.sampling_rate)

    def epoch(self, graphs: list[Any], optimizer: torch.optim.Optimizer, epoch: int) -> tuple[float, int]:
        """One epoch of DP-SGD steps on the prepared `graphs`; the summed loss and count of the molecules drawn."""
        self.strategy.train()
        freeze_batchnorm(self.strategy)
        rng = np.random.default_rng([self.seed, epoch, 1])
        gen = torch.Generator().manual_seed(_seed(self.seed, epoch, 2))
        expected = self.sampling_rate * self.n
        std = self.noise_multiplier * self.dp.max_grad_norm
        total, count = 0.0, 0
        for _ in range(self.steps_per_epoch):
            idx = np.flatnonzero(rng.random(self.n) < self.sampling_rate)
            grad, loss_sum = noisy_clipped_sum(self.strategy, [graphs[i] for i in idx], self.params,
                                               self.dp.max_grad_norm, std, gen)
            grad /= expected
            offset = 0
            for p in self.params:
                p.grad = grad[offset:offset + p.numel()].view_as(p).to(p.dtype).clone()
                offset += p.numel()
            optimizer.step()
            total += loss_sum
            count += len(idx)
        return total, count

    def provenance(self) -> dict[str, Any]:
        """What the victim's provenance records under "dp"."""
        try:
            lib = f"dp_accounting {version('dp-accounting')}"
        except PackageNotFoundError:  # pragma: no cover - imported from a source tree
            lib = "dp_accounting"
        return {
            "epsilon": self.dp.epsilon, "epsilon_spent": self.epsilon_spent, "delta": self.dp.delta,
            "max_grad_norm": self.dp.max_grad_norm, "noise_multiplier": self.noise_multiplier,
            "sampling": "poisson", "sampling_rate": self.sampling_rate, "steps": self.steps,
            "accountant": f"{self.dp.accountant} ({lib})",
            "batchnorm": "eval mode, initial running statistics frozen",
            "per_molecule_gradients": "micro-batches of one molecule",
        }
