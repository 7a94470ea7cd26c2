"""The extraction attack: build or reuse the candidate pool, query the victim, score, write the top-K.

Used by `molleak extract`, by the policy method and by the benchmark suites. The private set is
never read here: the only labels are the attacker's weak labels (the pool labelled against the
auxiliary set).

Run directory (`RUN_DIR`) layout
--------------------------------
- `config.json`: the resolved `ExtractConfig` and the seed (`molleak.runs.start_run`).
- `metadata.json`: versions, host, command line, time.
- `pool.tsv.gz`: the enumerated candidate pool (`molleak.candidates.pool` format), when the run
  built it; reused by a rerun with the same vocabulary, steps and templates. Absent when the pool
  was given with `pool=` (then `extract.json` names it).
- `vocab/`: the vocabulary mined from the aux set, when none was given.
- `scores.tsv`: every molecule the method scored, one per line, header
  `smiles  score  alpha  provenance`; `score` is a Python float repr (exact round trip; `nan` =
  not scored, e.g. outside a docking subsample), `alpha` the alpha of the best record (`;`-joined
  over steps; empty when the score has none), `provenance` the best record as
  `template=T;core=SMILES;actions=p,i,j|p,i,j;records=N`
  (`core`: the finalised template, used by FCD against core-containing private molecules). Evaluation needs the whole pool's scores (AUC, TPR).
- `topk.tsv`: header `rank  smiles  score  provenance`; the K best unique molecules, ranked by
  `molleak.scoring.base.rank_order` (ties broken at random with the run's seed).
- `extract.json`: `method`, `options`, `queries` (victim molecules computed), `budget`,
  `seconds_score` (the method: victim queries, training, scoring), `seconds_total` (the whole run,
  pool and aux labelling included), `seconds` (per phase), `pool` (records, unique molecules,
  source, sha256 of its unique SMILES), `aux` (path, size, sha256), `k`, `n_scored`, `score_info`
  (what the score learned: held-out AUC, chosen alpha, docking failures...).
- `results.json`: written later by `molleak evaluate` (`molleak.evaluate.evaluate`).

Methods
-------
`--method NAME` is looked up in `METHODS` first (search strategies such as the policy network of
`molleak.search` register there: a callable `(ctx: AttackContext, options: dict) -> MethodOutput`,
optionally with a `uses_victim` attribute), then in `molleak.scoring.base.SCORES`, where every
score is the method "enumerate the pool and rank it by that score". Modules under
`molleak.scoring` and `molleak.search` are imported on lookup, so registering there is enough.

Multi-record rule: a molecule reached by several records scores the max over its records
(see `molleak.scoring.base`).
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from molleak.errors import InputFileError, MolleakError
from molleak.registry import Registry
from molleak.runs import (
    resolve_seed,
    seed_everything,
    sha256_file,
    sha256_lines,
    start_run,
    write_atomic,
    write_json_atomic,
)
from molleak.scoring.base import StepTable, build_score, load_scores, molecule_max, rank_order  # noqa: F401

if TYPE_CHECKING:  # pragma: no cover
    from molleak.candidates.pool import CandidateRecord
    from molleak.models.victim import Victim

log = logging.getLogger(__name__)

POOL_FILE = "pool.tsv.gz"
SCORES_HEADER = "smiles\tscore\talpha\tprovenance"
TOPK_HEADER = "rank\tsmiles\tscore\tprovenance"


@dataclass
class MethodOutput:
    """What an extraction method returns: the molecules it scored (unique canonical SMILES).

    Attributes:
        smiles: every molecule scored (for pool methods, the whole pool).
        scores: one per molecule, higher first; NaN = not scored.
        provenance: one line per molecule saying how it was built.
        alpha: per molecule, the alpha text of its best record, or None.
        info: what the method learned or measured (goes to `extract.json`).
    """

    smiles: list[str]
    scores: np.ndarray
    provenance: list[str]
    alpha: list[str] | None = None
    info: dict[str, Any] = field(default_factory=dict)


METHODS: Registry[Callable[..., MethodOutput]] = Registry("extraction method")


class AttackContext:
    """Everything a score or method may use, each part built lazily on first use and timed.

    Args:
        aux_smiles: the attacker's auxiliary molecules (canonical).
        seed: the run's seed.
        records: the candidate pool, if already built.
        pool_path: a pool file to read when `records` is None.
        vocab: a `Vocabulary` to enumerate from when neither records nor pool_path is given.
        steps: assembly steps for enumeration.
        templates: template indices to enumerate (None: all).
        victim: a loaded victim, or
        victim_path: a checkpoint to load it from on first use (with `budget`).
        work_dir: where scores may keep artefacts (shadow encoder, docking cache).
        workers: worker processes for enumeration and labelling.
    """

    def __init__(self, *, aux_smiles: list[str], seed: int, records: list[CandidateRecord] | None = None,
                 pool_path: str | Path | None = None, vocab: Any = None, steps: int = 1,
                 templates: list[int] | None = None, victim: Victim | None = None, victim_path: str | None = None,
                 budget: int | None = None, work_dir: str | Path | None = None, workers: int | None = None):
        self.aux_smiles = list(aux_smiles)
        self.seed = int(seed)
        self.pool_path = pool_path
        self.vocab, self.steps, self.templates, self.workers = vocab, steps, templates, workers
        self.victim_path, self.budget = victim_path, budget
        self.work_dir = Path(work_dir) if work_dir is not None else None
        self.timings: dict[str, float] = {}
        self._records = records
        self._victim = victim
        self._smiles: list[str] | None = None
        self._record_molecule: np.ndarray | None = None
        self._aux_labels: Any = None
        self._step_table: StepTable | None = None
        self._step_emb: dict[int, np.ndarray] = {}

    def for_victim(self, victim: Victim) -> AttackContext:
        """A context for another victim over the same pool and aux set, sharing what is already built
        and does not depend on the victim (records, unique molecules, weak labels, step table)."""
        other = AttackContext(aux_smiles=self.aux_smiles, seed=self.seed, records=self._records,
                              pool_path=self.pool_path, vocab=self.vocab, steps=self.steps, templates=self.templates,
                              victim=victim, budget=self.budget, work_dir=self.work_dir, workers=self.workers)
        other._smiles, other._record_molecule = self._smiles, self._record_molecule
        other._aux_labels, other._step_table = self._aux_labels, self._step_table
        return other

    def _timed(self, key: str, t0: float) -> None:
        self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - t0

    @property
    def records(self) -> list[CandidateRecord]:
        """The candidate pool (read or enumerated on first use)."""
        if self._records is None:
            t0 = time.perf_counter()
            if self.pool_path is not None:
                from molleak.candidates.pool import read_pool

                self._records = read_pool(self.pool_path)
            elif self.vocab is not None:
                from molleak.candidates.enumerate import enumerate_pool

                self._records = list(enumerate_pool(self.vocab, self.steps, templates=self.templates,
                                                    workers=self.workers))
            else:
                raise MolleakError("no candidate pool: give a pool file or a vocabulary")
            if not self._records:
                raise MolleakError("the candidate pool is empty (no template/motif combination assembled)")
            self._timed("pool", t0)
        return self._records

    @property
    def smiles(self) -> list[str]:
        """The pool's unique molecules, in first-seen order."""
        if self._smiles is None:
            from molleak.candidates.pool import unique_smiles

            self._smiles = unique_smiles(self.records)
        return self._smiles

    @property
    def record_molecule(self) -> np.ndarray:
        """Per record, the index of its molecule in `smiles`."""
        if self._record_molecule is None:
            index = {s: i for i, s in enumerate(self.smiles)}
            self._record_molecule = np.array([index[r.smiles] for r in self.records], dtype=np.int64)
        return self._record_molecule

    @property
    def aux_labels(self) -> Any:
        """The attacker's weak labels: the pool's molecules labelled against the aux set (`Labels`)."""
        if self._aux_labels is None:
            from molleak.oracle import Bank, label

            smiles = self.smiles
            t0 = time.perf_counter()
            self._aux_labels = label(smiles, Bank(self.aux_smiles, name="aux set"), workers=self.workers)
            self._timed("label_aux", t0)
            log.info("aux weak labels: %d of %d pool molecules are substructures of an aux molecule",
                     int(np.sum(self._aux_labels.substructure)), len(smiles))
        return self._aux_labels

    @property
    def victim(self) -> Victim:
        """The victim (loaded on first use, with the run's query budget)."""
        if self._victim is None:
            if self.victim_path is None:
                raise MolleakError("this method needs a victim: pass --victim")
            from molleak.models.victim import Victim

            self._victim = Victim.from_checkpoint(self.victim_path, budget=self.budget)
        return self._victim

    @property
    def queries(self) -> int:
        """Molecules the victim has computed so far (0 if it was never loaded)."""
        return 0 if self._victim is None else int(self._victim.queries)

    @property
    def step_table(self) -> StepTable:
        if self._step_table is None:
            self._step_table = StepTable.build(self.records)
        return self._step_table

    def step_embeddings(self, victim: Victim | None = None) -> np.ndarray:
        """Embeddings of `step_table.smiles` through `victim` (default: the victim), computed once."""
        victim = self.victim if victim is None else victim
        if id(victim) not in self._step_emb:
            t0 = time.perf_counter()
            self._step_emb[id(victim)] = self.step_table.embed(victim)
            self._timed("embed", t0)
        return self._step_emb[id(victim)]

    def molecule_embeddings(self) -> np.ndarray:
        """The victim's embeddings of the pool's unique molecules (one batched call)."""
        t0 = time.perf_counter()
        out = self.victim.embed(self.smiles)
        self._timed("embed", t0)
        return out

    def provenance(self, record_index: int) -> str:
        """How a record was built: `template=T;core=<finalised template>;actions=p,i,j|p,i,j`."""
        r = self.records[record_index]
        acts = "|".join(f"{p},{i},{j}" for p, i, j in r.actions)
        core = r.steps[0].before if r.steps else r.smiles
        return f"template={r.template};core={core};actions={acts}"


def load_methods() -> Registry[Callable[..., MethodOutput]]:
    """Import the scoring and search modules so their methods and scores register themselves."""
    load_scores()
    try:
        import molleak.search as pkg
    except ImportError:  # pragma: no cover
        return METHODS
    for info in pkgutil.iter_modules(pkg.__path__):
        try:
            importlib.import_module(f"molleak.search.{info.name}")
        except ImportError as exc:
            log.warning("search module %s not loaded: %s", info.name, exc)
    return METHODS


def method_names() -> list[str]:
    """Every name `--method` accepts."""
    return sorted(set(load_methods().names()) | set(load_scores().names()))


def method_uses_victim(name: str) -> bool:
    if name in load_methods():
        return bool(getattr(METHODS.get(name), "uses_victim", True))
    return bool(load_scores().get(name).uses_victim)


def rank_pool(ctx: AttackContext, score_name: str, options: dict[str, Any] | None = None) -> MethodOutput:
    """The enumerate-and-rank method: score the whole pool with a registered score."""
    score = build_score(score_name, options)
    result = score(ctx)
    n_rec = np.bincount(ctx.record_molecule, minlength=len(ctx.smiles))
    if result.best_record is None:  # molecule-level score: name the first record reaching the molecule
        _, best = molecule_max(np.zeros(len(ctx.records)), ctx.record_molecule, len(ctx.smiles))
    else:
        best = result.best_record
    provenance = [f"{ctx.provenance(int(b))};records={int(n)}" for b, n in zip(best, n_rec, strict=True)]
    return MethodOutput(list(ctx.smiles), np.asarray(result.values, dtype=np.float64), provenance,
                        result.alpha, result.info)


def run_method(ctx: AttackContext, method: str, options: dict[str, Any] | None = None) -> MethodOutput:
    """Run a registered method (or rank the pool by a registered score)."""
    if method in load_methods():
        return METHODS.get(method)(ctx, dict(options or {}))
    return rank_pool(ctx, method, options)


@dataclass
class ExtractConfig:
    """Everything that decides an extraction run (written to `config.json`)."""

    out: str
    aux: str
    victim: str | None = None
    vocab: str | None = None
    pool: str | None = None
    steps: int = 1
    templates: list[int] | None = None
    method: str = "adapter"
    options: dict[str, Any] = field(default_factory=dict)
    k: int = 200
    budget: int | None = None
    seed: int | None = None
    workers: int | None = None


def _vocab_sha(vocab_dir: Path) -> str:
    from molleak.candidates.vocab import MOTIFS_FILE, TEMPLATES_FILE

    return sha256_lines([sha256_file(vocab_dir / TEMPLATES_FILE), sha256_file(vocab_dir / MOTIFS_FILE)])


def _prepare_pool(config: ExtractConfig, out: Path, aux_smiles: list[str], workers: int | None) -> dict[str, Any]:
    """Decide where the pool comes from; returns the AttackContext pool kwargs and a description."""
    from molleak.candidates.vocab import Vocabulary, mine_vocabulary

    if config.pool is not None:
        if not Path(config.pool).is_file():
            raise InputFileError(f"candidate pool not found: {config.pool}")
        return {"pool_path": config.pool, "source": str(config.pool)}
    if config.vocab is not None:
        vocab_dir = Path(config.vocab)
        if not vocab_dir.is_dir():
            raise InputFileError(f"vocabulary directory not found: {vocab_dir}")
    else:
        vocab_dir = out / "vocab"
        if not vocab_dir.is_dir():
            log.info("no vocabulary given: mining one from the %d aux molecules into %s", len(aux_smiles), vocab_dir)
            mine_vocabulary(aux_smiles, workers=workers).save(vocab_dir)
    vocab = Vocabulary.load(vocab_dir)
    key = {"vocab_sha256": _vocab_sha(vocab_dir), "steps": config.steps, "templates": config.templates}
    cached = out / POOL_FILE
    previous = out / "extract.json"
    if cached.is_file() and previous.is_file():
        import json

        old = json.loads(previous.read_text()).get("pool", {})
        if old.get("key") == key:
            log.info("reusing the pool in %s", cached)
            return {"pool_path": cached, "source": str(cached), "key": key}
    return {"vocab": vocab, "source": f"enumerated from {vocab_dir}", "key": key, "write_to": cached}


def _fmt(x: float) -> str:
    return repr(float(x))


def write_scores(out: Path, output: MethodOutput, k: int, seed: int) -> np.ndarray:
    """Write `scores.tsv` and `topk.tsv`; returns the ranking (indices into output.smiles)."""
    n = len(output.smiles)
    if len(output.scores) != n or len(output.provenance) != n or (output.alpha is not None and len(output.alpha) != n):
        raise ValueError("method output: smiles, scores, provenance and alpha differ in length")
    alpha = output.alpha if output.alpha is not None else [""] * n
    lines = [SCORES_HEADER] + [f"{s}\t{_fmt(v)}\t{a}\t{p}" for s, v, a, p in
                               zip(output.smiles, output.scores, alpha, output.provenance, strict=True)]
    write_atomic(out / "scores.tsv", "\n".join(lines) + "\n")
    order = rank_order(output.scores, seed)
    top = order[:k]
    lines = [TOPK_HEADER] + [f"{r + 1}\t{output.smiles[i]}\t{_fmt(output.scores[i])}\t{output.provenance[i]}"
                             for r, i in enumerate(top)]
    write_atomic(out / "topk.tsv", "\n".join(lines) + "\n")
    return order


def run_extract(config: ExtractConfig, *, victim: Victim | None = None) -> dict[str, Any]:
    """Run one extraction and write its run directory; returns the `extract.json` content.

    Args:
        config: the run's configuration (`seed` None draws one, recorded in config.json).
        victim: an already loaded victim to use instead of `config.victim` (tests, benchmarks).
    """
    from molleak.data.smiles_io import read_smiles

    t_start = time.perf_counter()
    seed = resolve_seed(config.seed)
    seed_everything(seed)
    if config.k < 1:
        raise MolleakError(f"k must be at least 1, got {config.k}")
    if config.steps < 1:
        raise MolleakError(f"steps must be at least 1, got {config.steps}")
    if method_uses_victim(config.method) and victim is None and config.victim is None:
        raise MolleakError(f"method {config.method} queries the victim: pass --victim")
    out = start_run(config.out, asdict(config), seed)
    aux = read_smiles(config.aux, what="auxiliary set")
    pool = _prepare_pool(config, out, aux.smiles, config.workers)
    ctx = AttackContext(aux_smiles=aux.smiles, seed=seed, pool_path=pool.get("pool_path"), vocab=pool.get("vocab"),
                        steps=config.steps, templates=config.templates, victim=victim,
                        victim_path=config.victim, budget=config.budget, work_dir=out, workers=config.workers)
    if victim is not None and config.budget is not None:
        victim.budget = config.budget
    queries_before = ctx.queries
    is_pool_method = config.method not in load_methods()
    if is_pool_method:  # pool and weak labels are shared preparation, not the score's time
        _ = ctx.aux_labels
        if "write_to" in pool:
            from molleak.candidates.pool import write_pool

            write_pool(pool["write_to"], ctx.records)
    prep = dict(ctx.timings)
    t0 = time.perf_counter()
    output = run_method(ctx, config.method, config.options)
    seconds_method = time.perf_counter() - t0
    prep_in_method = sum(ctx.timings.get(key, 0.0) - prep.get(key, 0.0) for key in ("pool", "label_aux"))
    order = write_scores(out, output, config.k, seed)
    n_scored = int(np.isfinite(output.scores).sum())
    if n_scored < config.k:
        log.warning("only %d molecules were scored; the top-K holds %d, not %d", n_scored, n_scored, config.k)
    summary: dict[str, Any] = {
        "method": config.method,
        "options": config.options,
        "queries": ctx.queries - queries_before,
        "budget": config.budget,
        "seconds_score": round(seconds_method - prep_in_method, 3),
        "seconds_total": round(time.perf_counter() - t_start, 3),
        "seconds": {k: round(v, 3) for k, v in ctx.timings.items()},
        "k": config.k,
        "n_scored": n_scored,
        "n_topk": int(min(config.k, len(order))),
        "aux": {"path": str(config.aux), "n": len(aux.smiles), "sha256": sha256_lines(aux.smiles)},
        "victim": None if ctx._victim is None else {"path": config.victim, "name": ctx.victim.name,
                                                    "strategy": ctx.victim.provenance.get("strategy"),
                                                    "train_sha256": ctx.victim.provenance.get("train_sha256")},
        "score_info": output.info,
    }
    if ctx._records is not None:
        summary["pool"] = {"source": pool["source"], "key": pool.get("key"), "records": len(ctx.records),
                           "unique": len(ctx.smiles), "sha256": sha256_lines(ctx.smiles)}
    if ctx._aux_labels is not None:
        summary["aux_base_rate_substructure"] = float(np.mean(ctx.aux_labels.substructure))
    write_json_atomic(out / "extract.json", summary)
    log.info("%s: %d molecules scored, top %d written to %s (%d queries, %.1f s score / %.1f s total)",
             config.method, n_scored, summary["n_topk"], out, summary["queries"], summary["seconds_score"],
             summary["seconds_total"])
    return summary
