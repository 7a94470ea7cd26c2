"""Learned search under a victim-query budget: the archive, the rewards, the actor-critic loop.

RL method: on-policy actor-critic with Monte-Carlo returns (REINFORCE with a learned value
baseline). A batch of episodes is played with the current policy; each finished molecule gets its
terminal reward R; for every step t the advantage is R - V(s_t) (normalised over the batch), the
template choice uses the batch mean reward as its baseline; loss = -A * log pi + c_v (V - R)^2
- c_e * entropy (the three heads' entropies and the template head's); one Adam step per batch.

Budget: rewards that need the victim (`AdapterReward`) embed every distinct before / motif /
after SMILES of the batch in one `Victim.embed` call and count what was computed; before a batch
is scored, the episodes whose new molecules no longer fit in the budget are dropped and the
search stops. The archive keeps every molecule generated (canonical SMILES, best reward, update
and query count when first found, how it was built); the method's top-K comes from it.

Exploration: when a batch finds almost no new molecule (under `min_new_fraction`), a share of
the next batches (`explore`, up to `max_explore`) is played with uniform random actions; those
episodes fill the archive but do not enter the policy gradient, and the share decays once the
policy finds new molecules again. A converged policy therefore cannot leave the budget unspent.

The same loop with `learn=False` is the random-search baseline (uniform valid actions, same
adapter, same budget accounting).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from molleak.attack.search.env import ActionSpace, AssemblyEnv, Episode
from molleak.attack.search.policy import PolicyNet, StateBatch
from molleak.errors import MolleakError
from molleak.runs import torch_threads

log = logging.getLogger(__name__)


class Archive:
    """Every molecule the search generated, keyed by canonical SMILES."""

    def __init__(self) -> None:
        self.smiles: list[str] = []
        self.reward: list[float] = []
        self.update: list[int] = []
        self.queries: list[int] = []
        self.provenance: list[str] = []
        self.count: list[int] = []
        self._index: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.smiles)

    def __contains__(self, smiles: str) -> bool:
        return smiles in self._index

    def add(self, smiles: str, reward: float, update: int, queries: int, provenance: str) -> None:
        """Record a generated molecule; keep its best reward (and how that was reached)."""
        k = self._index.get(smiles)
        if k is None:
            self._index[smiles] = len(self.smiles)
            self.smiles.append(smiles)
            self.reward.append(float(reward))
            self.update.append(int(update))
            self.queries.append(int(queries))
            self.provenance.append(provenance)
            self.count.append(1)
            return
        self.count[k] += 1
        if reward > self.reward[k]:
            self.reward[k], self.provenance[k] = float(reward), provenance

    def rescore(self, values: dict[str, float]) -> None:
        """Replace the rewards of the molecules in `values` (the reward function was refitted)."""
        for smiles, v in values.items():
            k = self._index.get(smiles)
            if k is not None:
                self.reward[k] = float(v)

    def top_mean(self, k: int) -> float:
        """Mean of the k best rewards (NaN when empty)."""
        if not self.reward:
            return float("nan")
        r = np.sort(np.asarray(self.reward))[::-1][:k]
        return float(r.mean())

    def state(self) -> dict[str, list]:
        """Plain lists (safe for `torch.load(weights_only=True)`)."""
        return {"smiles": list(self.smiles), "reward": list(self.reward), "update": list(self.update),
                "queries": list(self.queries), "provenance": list(self.provenance), "count": list(self.count)}

    @classmethod
    def from_state(cls, state: dict[str, list]) -> Archive:
        a = cls()
        a.smiles, a.reward, a.update = list(state["smiles"]), [float(x) for x in state["reward"]], list(state["update"])
        a.queries, a.provenance, a.count = list(state["queries"]), list(state["provenance"]), list(state["count"])
        a._index = {s: k for k, s in enumerate(a.smiles)}
        return a


def provenance(ep: Episode) -> str:
    """How an episode built its molecule, in the run layout's `provenance` format (without records=)."""
    acts = "|".join(f"{p},{i},{j}" for p, i, j in ep.actions)
    return f"template={ep.template};core={ep.steps[0].before};actions={acts}"


class Reward:
    """Scores finished episodes. `affordable(episodes)` says how many (a prefix) fit the budget."""

    queries: int = 0

    def affordable(self, episodes: Sequence[Episode]) -> int:
        return len(episodes)

    def __call__(self, episodes: Sequence[Episode]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class FunctionReward(Reward):
    """A reward computed from each episode alone (no victim): tests and planted problems."""

    def __init__(self, fn: Callable[[Episode], float]):
        self.fn = fn

    def __call__(self, episodes: Sequence[Episode]) -> np.ndarray:
        return np.array([self.fn(ep) for ep in episodes], dtype=np.float64)


@dataclass
class SearchConfig:
    """Knobs of the search (all JSON values: they come from `--option key=value`)."""

    batch: int = 32
    lr: float = 1e-3
    entropy: float = 0.01
    value_coef: float = 0.5
    hidden: int = 64
    layers: int = 3
    learn: bool = True
    curve_k: int = 200
    failed_reward: float | None = None  # None: -steps (below any adapter score)
    repeat_penalty: float = 2.0
    min_new_fraction: float = 0.1
    max_explore: float = 0.75
    threads: int = 1


class PolicySearch:
    """The search loop (learned policy, or uniform random actions when `config.learn` is False).

    Args:
        space: the action space.
        max_steps: motifs per episode.
        reward: the reward of finished episodes.
        config: the knobs.
        seed: seeds the network, the sampling and the template draws.
    """

    def __init__(self, space: ActionSpace, max_steps: int, reward: Reward, config: SearchConfig, seed: int):
        self.env = AssemblyEnv(space, max_steps)
        self.reward, self.config, self.seed = reward, config, int(seed)
        torch.manual_seed(self.seed)
        self.policy = PolicyNet(space, config.hidden, config.layers, max_steps) if config.learn else None
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=config.lr) if self.policy is not None else None
        self.generator = torch.Generator().manual_seed(self.seed)
        self.rng = np.random.default_rng(self.seed)
        self.archive = Archive()
        self.curve: list[dict[str, Any]] = []
        self.updates = 0
        self.episodes = 0
        self.failed_reward = -float(max_steps) if config.failed_reward is None else float(config.failed_reward)
        self.stopped = False
        self.entropy_coef = float(config.entropy)
        self.reward_version = 0  # bumped by whoever refits the reward; rewards of different versions differ in scale
        self.explore = 0.0  # share of each batch played with uniform random actions (raised while the policy stalls)

    # -- one batch -------------------------------------------------------------------------
    def _play(self, n: int) -> tuple[list[Episode], list[list[tuple]], torch.Tensor | None]:
        """Play n episodes; per episode the list of (log_prob, entropy, value) per step."""
        if self.policy is None:
            return self.env.random_rollouts(n, self.rng), [[] for _ in range(n)], None
        d_template = self.policy.template_distribution()
        t = torch.multinomial(d_template.probs, n, replacement=True, generator=self.generator)
        t_logp = d_template.log_prob(t)
        episodes = self.env.reset(t.tolist())
        trace: list[list[tuple]] = [[] for _ in range(n)]
        while True:
            active = [k for k, ep in enumerate(episodes) if not ep.done]
            if not active:
                break
            out = self.policy.act(StateBatch.build([episodes[k] for k in active]), self.generator)
            for row, k in enumerate(active):
                trace[k].append((out.log_prob[row], out.entropy[row], out.value[row]))
                self.env.step(episodes[k], out.actions[row])
        return episodes, trace, t_logp

    def step(self) -> bool:
        """Play, score and learn from one batch; False when the budget allowed nothing more."""
        if self.stopped:
            return False
        n_explore = int(round(self.explore * self.config.batch)) if self.policy is not None else 0
        n_policy = self.config.batch - n_explore
        with torch_threads(self.config.threads):
            episodes, trace, t_logp = self._play(n_policy)
        if n_explore:
            # a converged policy regenerates its favourites and would leave the budget unspent:
            # uniform episodes keep finding new molecules; they go to the archive, not into the gradient
            episodes = episodes + self.env.random_rollouts(n_explore, self.rng)
            trace = trace + [[] for _ in range(n_explore)]
        ok = [k for k, ep in enumerate(episodes) if not ep.failed]
        fit = self.reward.affordable([episodes[k] for k in ok])
        if fit < len(ok):
            self.stopped = True
        keep_ok = ok[:fit]
        if not keep_ok:
            return False
        keep = sorted(set(keep_ok) | {k for k, ep in enumerate(episodes) if ep.failed and k < keep_ok[-1]})
        rewards = np.full(len(episodes), self.failed_reward)
        rewards[keep_ok] = self.reward([episodes[k] for k in keep_ok])
        queries = int(self.reward.queries)
        learn_rewards = rewards.copy()
        seen: set[str] = set()
        n_before = len(self.archive)
        for k in keep_ok:
            ep = episodes[k]
            # regenerating a known molecule adds nothing to the archive: the learning signal says so
            if ep.smiles in seen or ep.smiles in self.archive:
                learn_rewards[k] -= self.config.repeat_penalty
            seen.add(ep.smiles)
        for k in keep_ok:
            ep = episodes[k]
            self.archive.add(ep.smiles, float(rewards[k]), self.updates, queries, provenance(ep))
        new_fraction = (len(self.archive) - n_before) / len(keep_ok)
        if new_fraction < self.config.min_new_fraction:
            # an on-policy learner that only regenerates known molecules gets no signal towards new
            # ones (the repeat penalty is then the same for the whole batch): widen its sampling
            self.entropy_coef = min(1.0, 1.5 * self.entropy_coef)
            self.explore = min(float(self.config.max_explore), self.explore + 0.25)
        else:
            self.entropy_coef = max(float(self.config.entropy), 0.95 * self.entropy_coef)
            self.explore = max(0.0, self.explore - 0.05)
        learn = [k for k in keep if k < n_policy]
        if self.policy is not None and learn:
            with torch_threads(self.config.threads):
                self._learn([episodes[k] for k in learn], [trace[k] for k in learn], learn_rewards[learn],
                            t_logp[learn])
        self.episodes += len(keep)
        self.updates += 1
        self.curve.append({"update": self.updates, "episodes": self.episodes, "queries": queries,
                           "mean_reward": float(np.mean(rewards[keep_ok])), "archive": len(self.archive),
                           "new": len(self.archive) - n_before,
                           f"top{self.config.curve_k}_mean": self.archive.top_mean(self.config.curve_k),
                           "failed": self.env.n_failed, "entropy_coef": self.entropy_coef,
                           "reward_version": self.reward_version, "explore": n_explore / self.config.batch})
        return not self.stopped

    def _learn(self, episodes: list[Episode], trace: list[list[tuple]], rewards: np.ndarray,
               t_logp: torch.Tensor) -> None:
        r = torch.as_tensor(rewards, dtype=torch.float32)
        scale = r.std() if len(r) > 1 and r.std() > 1e-8 else torch.tensor(1.0)
        logp, ent, val, ret = [], [], [], []
        for k, steps in enumerate(trace):
            for lp, en, v in steps:
                logp.append(lp)
                ent.append(en)
                val.append(v)
                ret.append(r[k])
        policy_loss = -(((r - r.mean()) / scale) * t_logp).mean()
        ent_term = self.policy.template_distribution().entropy()
        value_loss = torch.tensor(0.0)
        if logp:
            logp_t, ent_t, val_t, ret_t = torch.stack(logp), torch.stack(ent), torch.stack(val), torch.stack(ret)
            adv = (ret_t - val_t.detach()) / scale
            policy_loss = policy_loss - (adv * logp_t).mean()
            ent_term = ent_term + ent_t.mean()
            value_loss = ((val_t - ret_t) / scale).pow(2).mean()
        loss = policy_loss + self.config.value_coef * value_loss - self.entropy_coef * ent_term
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.policy.parameters(), 5.0)
        self.optimizer.step()

    def run(self, max_updates: int | None = None, on_update: Callable[[PolicySearch], None] | None = None) -> None:
        """Step until the budget is spent (or `max_updates` updates in total)."""
        while max_updates is None or self.updates < max_updates:
            t0 = time.perf_counter()
            more = self.step()
            if self.curve and on_update is not None:
                on_update(self)
            if self.curve:
                c = self.curve[-1]
                log.debug("update %d: %d queries, mean reward %.4f, archive %d (%.2f s)", c["update"], c["queries"],
                          c["mean_reward"], c["archive"], time.perf_counter() - t0)
            if not more:
                break

    # -- checkpoint ------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything needed to resume, as tensors and plain containers (weights_only-safe)."""
        return {
            "config": asdict(self.config), "seed": self.seed, "max_steps": self.env.max_steps,
            "policy": None if self.policy is None else self.policy.state_dict(),
            "optimizer": None if self.optimizer is None else self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "rng": _jsonable_rng(self.rng),
            "archive": self.archive.state(), "curve": list(self.curve), "updates": self.updates,
            "episodes": self.episodes, "failed": self.env.n_failed, "stopped": self.stopped,
            "entropy_coef": self.entropy_coef, "reward_version": self.reward_version, "explore": self.explore,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        if state["config"] != asdict(self.config) or state["max_steps"] != self.env.max_steps:
            raise MolleakError("checkpoint was made with other search options or steps; use a fresh run directory")
        if self.policy is not None:
            self.policy.load_state_dict(state["policy"])
            self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.rng.bit_generator.state = _rng_from_jsonable(state["rng"])
        self.archive = Archive.from_state(state["archive"])
        self.curve, self.updates, self.episodes = list(state["curve"]), int(state["updates"]), int(state["episodes"])
        self.env.n_failed = int(state["failed"])
        self.entropy_coef = float(state["entropy_coef"])
        self.reward_version = int(state.get("reward_version", 0))
        self.explore = float(state.get("explore", 0.0))
        self.stopped = False  # a resumed run may have a larger budget


def _jsonable_rng(rng: np.random.Generator) -> dict[str, Any]:
    st = rng.bit_generator.state
    return {"bit_generator": st["bit_generator"], "state": str(st["state"]["state"]), "inc": str(st["state"]["inc"]),
            "has_uint32": st["has_uint32"], "uinteger": st["uinteger"]}


def _rng_from_jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {"bit_generator": d["bit_generator"], "state": {"state": int(d["state"]), "inc": int(d["inc"])},
            "has_uint32": d["has_uint32"], "uinteger": d["uinteger"]}


def curve_tsv(curve: list[dict[str, Any]]) -> str:
    """The learning curve as TSV text (one row per update)."""
    if not curve:
        return ""
    cols = list(curve[0])
    rows = ["\t".join(cols)] + ["\t".join(_cell(c[k]) for k in cols) for c in curve]
    return "\n".join(rows) + "\n"


def _cell(v: Any) -> str:
    return repr(float(v)) if isinstance(v, float) and not math.isnan(v) else str(v)
