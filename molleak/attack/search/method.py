"""Extraction methods of the search package, registered in `molleak.attack.run.METHODS`.

- `policy`: the Molecule Extraction Policy Network. A share of the query budget
  (`adapter_fraction`) goes to uniformly random episodes; their molecules are labelled against
  the auxiliary set only (the attacker's weak labels) and the learned adapter score is trained on
  them (held-out early stopping, as `molleak.attack.scoring.adapter`); the rest of the budget goes to the
  actor-critic search whose reward is the adapter score of each finished molecule (sum over its
  steps). Every molecule generated goes to the archive; the top-K comes from it. The adapter is
  refitted on every molecule generated so far (aux labels, no extra victim query) whenever their
  number has grown by `refit_growth` (default 1.5x) and once at the end, and the archive is
  rescored with it: the search cannot keep exploiting a reward that is wrong where it goes, and
  the final ranking uses an adapter trained on everything the budget bought (`AdapterRefit`).
- `random-search`: the same, with uniformly random valid actions instead of the policy.
- `adapter-budget`: enumerate-and-rank restricted to the budget: a seeded random subset of the
  enumerated pool's records whose step molecules fit in `--budget` victim queries, ranked by the
  `adapter` score trained on that subset's weak labels.

The private set is never read: the only labels are the aux weak labels.

Run-directory additions (policy and random-search): `curve.tsv` (per update: episodes, victim
queries, mean reward of the batch, archive size, top-K mean reward, failed episodes) and
`policy_checkpoint.pt` (policy, optimiser, adapter, archive, curve, embedding cache and RNG
states; `torch.save` of tensors and plain containers, loaded with `weights_only=True`). Rerunning
the same command on the same run directory resumes from the checkpoint (a larger `--budget`
continues the search).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from molleak import rundir
from molleak.attack.context import AttackContext
from molleak.attack.methods import MethodOutput, rank_pool, register_method
from molleak.attack.scoring.adapter import Adapter, fit_adapter
from molleak.attack.scoring.base import StepTable, heavy_atoms
from molleak.attack.search.agent import Archive, PolicySearch, Reward, SearchConfig, curve_tsv, provenance
from molleak.attack.search.env import ActionSpace, Episode
from molleak.candidates.pool import CandidateRecord
from molleak.errors import MolleakError
from molleak.runs import torch_threads, write_atomic

if TYPE_CHECKING:  # pragma: no cover
    from molleak.models.victim import Victim

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "policy_checkpoint.pt"
CURVE_FILE = rundir.CURVE_FILE  # the run contract owns the name (the report reads it)


class AdapterReward(Reward):
    """Sum over steps of the adapter score; victim embeddings batched, cached and budgeted.

    Args:
        victim: the victim (its `embed` computes and counts).
        budget: the most victim molecules this search may compute (None: unlimited).
    """

    def __init__(self, victim: Victim, budget: int | None, threads: int = 1):
        self.victim, self.budget, self.threads = victim, budget, threads
        self.model: Adapter | None = None
        self.emb: dict[str, np.ndarray] = {}
        self.n_atoms: dict[str, float] = {}
        self.queries = 0
        self.seconds_embed = 0.0
        #: every distinct (molecule, construction) scored so far: what a refit trains on and rescores
        self.records: dict[str, CandidateRecord] = {}

    @staticmethod
    def _step_smiles(ep: Episode) -> list[str]:
        return [s for st in ep.steps for s in (st.before, st.motif, st.after)]

    def affordable(self, episodes: Sequence[Episode]) -> int:
        if self.budget is None:
            return len(episodes)
        new: set[str] = set()
        for k, ep in enumerate(episodes):
            more = {s for s in self._step_smiles(ep) if s not in self.emb} - new
            if self.queries + len(new) + len(more) > self.budget:
                return k
            new |= more
        return len(episodes)

    def embed(self, episodes: Sequence[Episode]) -> None:
        """Embed every step molecule of the episodes not seen yet (one batched victim call)."""
        todo = [s for s in dict.fromkeys(s for ep in episodes for s in self._step_smiles(ep)) if s not in self.emb]
        if not todo:
            return
        t0 = time.perf_counter()
        before = int(self.victim.queries)
        with torch_threads(self.threads):
            out = self.victim.embed(todo)
        self.queries += int(self.victim.queries) - before
        self.emb.update(zip(todo, out, strict=True))
        self.n_atoms.update(zip(todo, heavy_atoms(todo).tolist(), strict=True))
        self.seconds_embed += time.perf_counter() - t0

    def __call__(self, episodes: Sequence[Episode]) -> np.ndarray:
        if self.model is None:
            raise RuntimeError("AdapterReward used before its adapter was trained")
        self.embed(episodes)
        for ep in episodes:
            rec = ep.record()
            self.records.setdefault(rec.to_line(), rec)
        steps = [(k, st) for k, ep in enumerate(episodes) for st in ep.steps]
        if not steps:
            return np.zeros(len(episodes))

        def emb(key: str) -> torch.Tensor:
            return torch.from_numpy(np.stack([self.emb[getattr(st, key)] for _, st in steps]).astype(np.float32))

        n_t = torch.tensor([self.n_atoms[st.before] for _, st in steps], dtype=torch.float32)
        n_m = torch.tensor([self.n_atoms[st.motif] for _, st in steps], dtype=torch.float32)
        with torch.no_grad():
            s, _ = self.model(emb("before"), emb("motif"), emb("after"), n_t, n_m)
        out = torch.zeros(len(episodes), dtype=torch.float64)
        out.index_add_(0, torch.tensor([k for k, _ in steps]), s.double())
        return out.numpy()

    def state(self) -> dict[str, Any]:
        keys = list(self.emb)
        return {"queries": self.queries, "smiles": keys,
                "emb": torch.from_numpy(np.stack([self.emb[k] for k in keys])) if keys else torch.zeros(0),
                "n_atoms": [self.n_atoms[k] for k in keys],
                "records": list(self.records),
                "adapter": None if self.model is None else self.model.state_dict()}


def fit_step_adapter(records: list[CandidateRecord], labels: dict[str, bool], emb: dict[str, np.ndarray],
                     seed: int, *, out_dim: int = 100, steps: int = 200, lr: float = 1e-3,
                     weight_decay: float = 5e-4, heldout: float = 0.2,
                     patience: int = 50) -> tuple[Adapter, dict, np.ndarray]:
    """Train the adapter of `molleak.attack.scoring.adapter` on generated episodes; the model, info, record scores.

    The search scores molecules it has not generated yet, so it keeps the trained model; the
    per-record scores (sum over steps) rescore the archive after a refit.

    Args:
        records: the warm-up episodes as pool records.
        labels: aux weak label per molecule SMILES.
        emb: victim embedding per step SMILES.
        seed: seeds the split and the weights.
    """
    table = StepTable.build(records)
    smiles = list(dict.fromkeys(r.smiles for r in records))
    index = {s: k for k, s in enumerate(smiles)}
    record_molecule = np.array([index[r.smiles] for r in records], dtype=np.int64)
    y = np.array([labels[s] for s in smiles], dtype=bool)
    fit = fit_adapter(table, np.stack([emb[s] for s in table.smiles]), record_molecule, y, seed, out_dim=out_dim,
                      steps=steps, lr=lr, weight_decay=weight_decay, heldout=heldout, patience=patience)
    info = {"heldout_auc": fit.info["heldout_auc"], "best_step": fit.info["best_step"], "n_molecules": len(smiles),
            "n_records": len(records), "positive_rate": float(y.mean()),
            "heldout_auc_history": fit.info["heldout_auc_history"]}
    return fit.model, info, np.asarray(fit.record_values, dtype=np.float64)


_SEARCH_KEYS = {f.name for f in fields(SearchConfig)}
_ADAPTER_KEYS = {"out_dim", "adapter_steps", "adapter_lr", "weight_decay", "heldout", "patience"}
_RUN_KEYS = {"adapter_fraction", "max_updates", "checkpoint_every", "resume", "stall_updates", "refit_growth"}


def _split_options(options: dict[str, Any], learn: bool) -> tuple[SearchConfig, dict[str, Any], dict[str, Any]]:
    unknown = set(options) - _SEARCH_KEYS - _ADAPTER_KEYS - _RUN_KEYS - {"learn"}
    if unknown:
        raise MolleakError(f"unknown search option(s): {', '.join(sorted(unknown))}; "
                           f"choose from {', '.join(sorted(_SEARCH_KEYS | _ADAPTER_KEYS | _RUN_KEYS))}")
    try:
        cfg = SearchConfig(**{k: v for k, v in options.items() if k in _SEARCH_KEYS and k != "learn"}, learn=learn)
    except TypeError as exc:
        raise MolleakError(f"bad search options: {exc}") from None
    adapter = {{"adapter_steps": "steps", "adapter_lr": "lr"}.get(k, k): v for k, v in options.items() if k in _ADAPTER_KEYS}
    run = {"adapter_fraction": 0.3, "max_updates": None, "checkpoint_every": 10, "resume": True, "stall_updates": 20,
           "refit_growth": 1.5}
    run.update({k: v for k, v in options.items() if k in _RUN_KEYS})
    if run["refit_growth"] is not None and float(run["refit_growth"]) <= 1:
        raise MolleakError(f"refit_growth must be above 1 (or null: never refit), got {run['refit_growth']}")
    if not 0 < float(run["adapter_fraction"]) < 1:
        raise MolleakError(f"adapter_fraction must be in (0, 1), got {run['adapter_fraction']}")
    return cfg, adapter, run


def search_method(ctx: AttackContext, options: dict[str, Any], learn: bool) -> MethodOutput:
    """The policy (learn=True) or random-search (learn=False) method on an `AttackContext`."""
    cfg, adapter_opts, run = _split_options(options, learn)
    if ctx.vocab is None:
        raise MolleakError("the search methods build molecules from a vocabulary: pass --vocab (or let it be mined), not --pool")
    if ctx.budget is None and run["max_updates"] is None:
        raise MolleakError("the search methods need a victim-query budget (--budget) or a max_updates option")
    space = ActionSpace.from_vocabulary(ctx.vocab, ctx.templates)
    reward = AdapterReward(ctx.victim, ctx.budget, cfg.threads)
    search = PolicySearch(space, ctx.steps, reward, cfg, ctx.seed)
    ckpt = None if ctx.work_dir is None else ctx.work_dir / CHECKPOINT_FILE
    t_start = time.perf_counter()
    warm_info: dict[str, Any]
    refit = AdapterRefit(ctx.aux_smiles, reward, ctx.seed, adapter_opts, run["refit_growth"])
    if ckpt is not None and ckpt.is_file() and bool(run["resume"]):
        warm_info = _resume(ckpt, search, reward, refit)
        log.info("resumed from %s: %d updates, %d queries, archive %d", ckpt, search.updates, reward.queries,
                 len(search.archive))
    else:
        warm_info = _warm_up(search, reward, float(run["adapter_fraction"]), refit)

    def save(s: PolicySearch) -> None:
        if ckpt is not None and s.updates % int(run["checkpoint_every"]) == 0:
            _save(ckpt, s, reward, warm_info, refit)

    stall, last_q = 0, reward.queries
    max_updates = None if run["max_updates"] is None else int(run["max_updates"])
    while max_updates is None or search.updates < max_updates:
        more = search.step()
        if more and refit.due():
            refit.fit(search.archive)
            search.reward_version = len(refit.history)
        save(search)
        # a policy that only regenerates known molecules spends no queries: stop it after a while
        stall = stall + 1 if reward.queries == last_q else 0
        last_q = reward.queries
        if not more or stall >= int(run["stall_updates"]):
            if stall >= int(run["stall_updates"]):
                log.warning("search stopped: %d updates without a new molecule", stall)
            break
    if refit.growth is not None and refit.n_molecules() > refit.last_n:
        refit.fit(search.archive)  # the final ranking: an adapter trained on everything generated
        search.reward_version = len(refit.history)
    if ckpt is not None:
        _save(ckpt, search, reward, warm_info, refit)
    if ctx.work_dir is not None:
        write_atomic(ctx.work_dir / CURVE_FILE, curve_tsv(search.curve))
    ctx.timings["embed"] = ctx.timings.get("embed", 0.0) + reward.seconds_embed
    ctx.timings["label_aux"] = ctx.timings.get("label_aux", 0.0) + refit.seconds_label
    ctx.timings["search"] = ctx.timings.get("search", 0.0) + time.perf_counter() - t_start
    a = search.archive
    info = {"adapter": warm_info, "adapter_fits": refit.history, "updates": search.updates, "episodes": search.episodes,
            "queries_search": reward.queries, "archive": len(a), "failed_episodes": search.env.n_failed,
            "search_options": {f.name: getattr(cfg, f.name) for f in fields(SearchConfig)},
            "run_options": run, "curve_file": CURVE_FILE if ctx.work_dir is not None else None}
    prov = [f"{p};records={c}" for p, c in zip(a.provenance, a.count, strict=True)]
    return MethodOutput(list(a.smiles), np.asarray(a.reward, dtype=np.float64), prov, None, info)


class AdapterRefit:
    """Fits the reward's adapter on every molecule generated so far and rescores the archive.

    Why refit: the warm-up adapter is trained on a few hundred random molecules; a policy that
    optimises it hard drifts into regions where it is wrong (reward hacking). Every generated
    molecule is already embedded (its reward needed that) and its aux weak label costs no victim
    query, so refitting on the growing archive corrects the reward exactly where the search goes,
    for free in queries. The last fit (at the end of the search) ranks the archive with an adapter
    trained on everything the budget bought, as budgeted enumerate-and-rank does.

    Args:
        aux_smiles: the attacker's auxiliary set (the only source of labels).
        reward: the search's reward (its `records`, `emb` and `model`).
        seed: seeds the adapter's split and weights.
        adapter_opts: `fit_step_adapter` keyword arguments.
        growth: refit when the number of distinct molecules reaches `growth` x the last fit's
            (None: only the warm-up fit).
    """

    def __init__(self, aux_smiles: Sequence[str], reward: AdapterReward, seed: int, adapter_opts: dict[str, Any],
                 growth: float | None):
        self.aux_smiles, self.reward, self.seed, self.opts = aux_smiles, reward, seed, adapter_opts
        self.growth = None if growth is None else float(growth)
        self.labels: dict[str, bool] = {}
        self.bank = None
        self.last_n = 0
        self.history: list[dict[str, Any]] = []
        self.seconds_label = 0.0

    def n_molecules(self) -> int:
        return len({r.smiles for r in self.reward.records.values()})

    def due(self) -> bool:
        return self.growth is not None and self.last_n > 0 and self.n_molecules() >= self.growth * self.last_n

    def fit(self, archive: Archive | None) -> dict[str, Any]:
        """Label new molecules against aux, fit the adapter on all records, rescore `archive`."""
        from molleak.oracle import Bank, label

        records = list(self.reward.records.values())
        smiles = list(dict.fromkeys(r.smiles for r in records))
        new = [m for m in smiles if m not in self.labels]
        if new:
            t0 = time.perf_counter()
            if self.bank is None:
                self.bank = Bank(self.aux_smiles)
            hits = np.asarray(label(new, self.bank).substructure, dtype=bool).tolist()
            self.labels.update(zip(new, hits, strict=True))
            self.seconds_label += time.perf_counter() - t0
        try:
            model, info, values = fit_step_adapter(records, self.labels, self.reward.emb, self.seed, **self.opts)
        except MolleakError as exc:
            if self.reward.model is None:
                raise
            log.warning("adapter refit skipped (the previous adapter is kept): %s", exc)
            self.last_n = len(smiles)
            return {}
        self.reward.model = model
        if archive is not None:
            best: dict[str, float] = {}
            for rec, v in zip(records, values, strict=True):
                best[rec.smiles] = max(best.get(rec.smiles, -np.inf), float(v))
            archive.rescore(best)
        self.last_n = len(smiles)
        info = {**info, "queries": self.reward.queries}
        self.history.append({k: info[k] for k in ("queries", "n_molecules", "n_records", "heldout_auc",
                                                  "positive_rate", "best_step")})
        log.info("adapter fit %d on %d molecules (%d queries): held-out AUC %s", len(self.history), len(smiles),
                 self.reward.queries, info["heldout_auc"])
        return info

    def state(self) -> dict[str, Any]:
        return {"last_n": self.last_n, "history": list(self.history)}

    def load_state(self, state: dict[str, Any]) -> None:
        self.last_n, self.history = int(state["last_n"]), list(state["history"])


def _warm_up(search: PolicySearch, reward: AdapterReward, fraction: float, refit: AdapterRefit) -> dict[str, Any]:
    """Spend `fraction` of the budget on random episodes, label them against aux, train the adapter."""
    full_budget = reward.budget
    if full_budget is not None:
        reward.budget = max(1, int(fraction * full_budget))
    episodes: list[Episode] = []
    target = None if full_budget is not None else 20 * search.config.batch
    while True:
        batch = [ep for ep in search.env.random_rollouts(search.config.batch, search.rng) if not ep.failed]
        fit = reward.affordable(batch)
        reward.embed(batch[:fit])
        episodes.extend(batch[:fit])
        if fit < len(batch) or (target is not None and len(episodes) >= target):
            break
    reward.budget = full_budget
    if not episodes:
        raise MolleakError("policy: the budget is too small for even one warm-up molecule")
    for ep in episodes:
        rec = ep.record()
        reward.records.setdefault(rec.to_line(), rec)
    info = refit.fit(None)
    values = reward(episodes)
    for ep, v in zip(episodes, values, strict=True):
        search.archive.add(ep.smiles, float(v), 0, reward.queries, provenance(ep))
    return info


def _save(path, search: PolicySearch, reward: AdapterReward, warm_info: dict[str, Any], refit: AdapterRefit) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"search": search.state(), "reward": reward.state(), "warm_info": warm_info,
                "refit": refit.state()}, tmp)
    tmp.replace(path)


def _resume(path, search: PolicySearch, reward: AdapterReward, refit: AdapterRefit) -> dict[str, Any]:
    try:
        state = torch.load(path, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises several types for bad files
        raise MolleakError(f"cannot read search checkpoint {path}: {exc}") from None
    search.load_state(state["search"])
    r = state["reward"]
    emb = r["emb"].numpy()
    reward.emb = {s: emb[k] for k, s in enumerate(r["smiles"])}
    reward.n_atoms = dict(zip(r["smiles"], r["n_atoms"], strict=True))
    reward.queries = int(r["queries"])
    reward.records = {line: CandidateRecord.from_line(line) for line in r.get("records", [])}
    if "refit" in state:
        refit.load_state(state["refit"])
    reward.model = Adapter(emb.shape[1], r["adapter"]["proj_t.weight"].shape[0])
    reward.model.load_state_dict(r["adapter"])
    reward.model.eval()
    return dict(state["warm_info"])


def _policy(ctx: AttackContext, options: dict[str, Any]) -> MethodOutput:
    return search_method(ctx, options, learn=True)


def _random_search(ctx: AttackContext, options: dict[str, Any]) -> MethodOutput:
    return search_method(ctx, options, learn=False)


def _adapter_budget(ctx: AttackContext, options: dict[str, Any]) -> MethodOutput:
    """Enumerate-and-rank by the adapter on a random record subset that fits the query budget."""
    if ctx.budget is None:
        raise MolleakError("adapter-budget needs --budget")
    records = ctx.records
    order = np.random.default_rng(ctx.seed).permutation(len(records))
    seen: set[str] = set()
    chosen = []
    for k in order:
        step_smiles = {s for st in records[k].steps for s in (st.before, st.motif, st.after)} - seen
        if len(seen) + len(step_smiles) > ctx.budget:
            continue
        seen |= step_smiles
        chosen.append(int(k))
    sub = AttackContext(aux_smiles=ctx.aux_smiles, seed=ctx.seed, records=[records[k] for k in sorted(chosen)],
                        victim=ctx.victim, work_dir=ctx.work_dir)
    out = rank_pool(sub, "adapter", options)
    for key, v in sub.timings.items():
        ctx.timings[key] = ctx.timings.get(key, 0.0) + v
    out.info = {**out.info, "subset_records": len(chosen), "pool_records": len(records),
                "subset_molecules": len(sub.smiles)}
    return out


register_method("policy", candidates="vocabulary", extends_budget=True)(_policy)
register_method("random-search", candidates="vocabulary", extends_budget=True)(_random_search)
register_method("adapter-budget")(_adapter_budget)
