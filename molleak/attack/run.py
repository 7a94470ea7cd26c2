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
  `molleak.attack.scoring.base.rank_order` (ties broken at random with the run's seed).
- `extract.json`: `method`, `options`, `queries` (victim molecules computed), `budget`,
  `seconds_score` (the method: victim queries, training, scoring), `seconds_total` (the whole run,
  pool and aux labelling included), `seconds` (per phase), `pool` (records, unique molecules,
  source, sha256 of its unique SMILES), `aux` (path, size, sha256), `k`, `n_scored`, `score_info`
  (what the score learned: held-out AUC, chosen alpha, docking failures...).
- `results.json`: written later by `molleak evaluate` (`molleak.evaluate.evaluate`).

File names, records and the reuse rule belong to `molleak.rundir`: a directory is resumed only
when the sha256 of the resolved inputs (config, victim bytes, aux set, pool or vocabulary, the
code's recipe versions) matches; otherwise the run is refused (or, with `force`, started afresh).
Methods and what they need: `molleak.attack.methods`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from molleak import rundir
from molleak.attack.context import AttackContext
from molleak.attack.methods import MethodOutput, method_needs, run_method, validate_options
from molleak.errors import InputFileError, MolleakError
from molleak.ranking import rank_order
from molleak.runs import (
    resolve_seed,
    run_metadata,
    seed_everything,
    sha256_file,
    sha256_lines,
    write_atomic,
    write_json_atomic,
)

if TYPE_CHECKING:  # pragma: no cover
    from molleak.models.victim import QueryVictim

log = logging.getLogger(__name__)


class ExtractConfig(BaseModel):
    """Everything that decides an extraction run (validated; unknown keys rejected; `molleak extract
    --config FILE` reads one from TOML)."""

    model_config = ConfigDict(extra="forbid")

    out: str
    aux: str
    victim: str | None = None  # a spec: checkpoint, http://host:port or module:callable (molleak.victims.open)
    role: rundir.Role | None = None  # None: victim if the method queries one, else prior
    vocab: str | None = None
    pool: str | None = None
    steps: int = Field(1, ge=1)
    templates: list[int] | None = None
    method: str = "adapter"
    options: dict[str, Any] = Field(default_factory=dict)
    k: int = Field(200, ge=1)
    budget: int | None = Field(None, ge=1)
    seed: int | None = Field(None, ge=0)
    workers: int | None = Field(None, ge=1)
    force: bool = False  # discard a run made from other inputs in `out`

    @field_validator("victim")
    @classmethod
    def _victim_spec(cls, spec: str | None) -> str | None:
        """A served victim's URL carries no key (config.json records it): checked here, opened later."""
        if spec is None:
            return None
        from molleak.victims.open import check_spec

        try:
            return check_spec(spec)
        except MolleakError as exc:
            raise ValueError(str(exc)) from None


def extract_config(**kwargs: Any) -> ExtractConfig:
    """An `ExtractConfig`, or one clear error naming the bad field."""
    try:
        return ExtractConfig(**kwargs)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise MolleakError(f"extract: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None


def _vocab_sha(vocab_dir: Path) -> str:
    from molleak.candidates.vocab import MOTIFS_FILE, TEMPLATES_FILE

    return sha256_lines([sha256_file(vocab_dir / TEMPLATES_FILE), sha256_file(vocab_dir / MOTIFS_FILE)])


def victim_ref(spec: str | Path) -> rundir.VictimRef:
    """Who the victim is (a checkpoint, a served victim or a plug-in): `molleak.victims.open.victim_ref`."""
    from molleak.victims.open import victim_ref as ref

    return ref(spec)


def _resolve(config: ExtractConfig, seed: int, uses_victim: bool, victim: QueryVictim | None,
             aux_sha: str, budget_is_input: bool = True) -> tuple[dict[str, Any], rundir.RunConfig]:
    """The run's resolved inputs (what the reuse hash covers) and its `config.json` record."""
    role = config.role or (rundir.Role.VICTIM if uses_victim else rundir.Role.PRIOR)
    ref = None
    if uses_victim:
        if config.victim is not None:
            ref = victim_ref(config.victim)
        elif victim is not None:  # an in-memory victim: identified by its weights
            ref = rundir.VictimRef(path=f"<in-memory {victim.name}>", sha256=victim.identity_sha256(),
                                   name=victim.name, strategy=victim.provenance.get("strategy"),
                                   train_sha256=victim.provenance.get("train_sha256"))
    inputs: dict[str, Any] = {
        "role": str(role), "method": config.method, "options": config.options, "aux_sha256": aux_sha,
        "victim_sha256": None if ref is None else ref.sha256, "steps": config.steps, "templates": config.templates,
        "k": config.k, "seed": seed,
    }
    if budget_is_input:  # a search's budget can be raised to continue it: not what identifies the run
        inputs["budget"] = config.budget
    if config.pool is not None:
        if not Path(config.pool).is_file():
            raise InputFileError(f"candidate pool not found: {config.pool}")
        inputs["pool_sha256"] = sha256_file(config.pool)
    elif config.vocab is not None:
        vocab_dir = Path(config.vocab)
        if not vocab_dir.is_dir():
            raise InputFileError(f"vocabulary directory not found: {vocab_dir}")
        inputs["vocab_sha256"] = _vocab_sha(vocab_dir)
    else:
        inputs["vocab"] = "mined from the aux set"
    if uses_victim:  # what the attacker trains itself (shadows) follows the code's recipes
        from molleak.pretrain.base import load_strategies

        inputs["recipe_versions"] = {n: load_strategies().get(n).recipe_version for n in load_strategies().names()}
    record = rundir.RunConfig(role=role, method=config.method, options=config.options, aux=config.aux,
                              aux_sha256=aux_sha, victim=config.victim, victim_ref=ref, vocab=config.vocab,
                              pool=config.pool, steps=config.steps, templates=config.templates, k=config.k,
                              budget=config.budget, seed=seed, workers=config.workers,
                              inputs_sha256=rundir.inputs_sha256(inputs))
    return inputs, record


def _prepare_pool(config: ExtractConfig, out: Path, aux_smiles: list[str], workers: int | None) -> dict[str, Any]:
    """Decide where the pool comes from; returns the AttackContext pool kwargs and a description.

    A pool or vocabulary left in `out` by an earlier attempt of this same run (same inputs hash:
    `open_run` said so) is reused; a truncated pool file is rebuilt.
    """
    from molleak.candidates.vocab import Vocabulary, mine_vocabulary

    if config.pool is not None:
        return {"pool_path": config.pool, "source": str(config.pool)}
    if config.vocab is not None:
        vocab_dir = Path(config.vocab)
    else:
        vocab_dir = out / rundir.VOCAB_DIR
        if not (vocab_dir / "vocab.json").is_file():
            log.info("no vocabulary given: mining one from the %d aux molecules into %s", len(aux_smiles), vocab_dir)
            mine_vocabulary(aux_smiles, workers=workers).save(vocab_dir)
    vocab = Vocabulary.load(vocab_dir)
    key = {"vocab_sha256": _vocab_sha(vocab_dir), "steps": config.steps, "templates": config.templates}
    cached = out / rundir.POOL_FILE
    if cached.is_file():
        from molleak.candidates.pool import read_pool

        try:
            read_pool(cached)
        except MolleakError as exc:
            log.warning("%s is unreadable (%s); enumerating again", cached, exc)
        else:
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
    lines = [rundir.SCORES_HEADER] + [f"{s}\t{_fmt(v)}\t{a}\t{p}" for s, v, a, p in
                                      zip(output.smiles, output.scores, alpha, output.provenance, strict=True)]
    write_atomic(out / rundir.SCORES_FILE, "\n".join(lines) + "\n")
    order = rank_order(output.scores, seed)
    top = order[:k]
    lines = [rundir.TOPK_HEADER] + [f"{r + 1}\t{output.smiles[i]}\t{_fmt(output.scores[i])}\t{output.provenance[i]}"
                                    for r, i in enumerate(top)]
    write_atomic(out / rundir.TOPK_FILE, "\n".join(lines) + "\n")
    return order


def run_extract(config: ExtractConfig, *, victim: QueryVictim | None = None,
                on_conflict: str = "refuse") -> dict[str, Any]:
    """Run one extraction and write its run directory; returns the `extract.json` content.

    A finished run with the same resolved inputs is returned as it is (nothing recomputed); a
    directory holding a run made from other inputs is refused (`config.force` or
    `on_conflict="replace"` start afresh).

    Args:
        config: the run's configuration (`seed` None draws one, recorded in config.json).
        victim: an already loaded victim to use instead of `config.victim` (tests, benchmarks).
        on_conflict: `refuse` (a user's --out) or `replace` (a plan's own cell directory).
    """
    from molleak.data.smiles_io import read_smiles

    t_start = time.perf_counter()
    seed = resolve_seed(config.seed)
    needs = method_needs(config.method)
    options = validate_options(config.method, config.options)
    if needs.victim and victim is None and config.victim is None:
        raise MolleakError(f"method {config.method} queries the victim: pass --victim")
    if needs.candidates == "vocabulary" and config.pool is not None:
        raise MolleakError(f"method {config.method} assembles molecules from a vocabulary: pass --vocab (or let "
                           f"one be mined from the aux set), not --pool")
    aux = read_smiles(config.aux, what="auxiliary set")
    aux_sha = sha256_lines(aux.smiles)
    inputs, record = _resolve(config, seed, needs.victim, victim, aux_sha, not needs.extends_budget)
    out, resumed = rundir.open_run(config.out, inputs, force=config.force, on_conflict=on_conflict)
    if resumed and (out / rundir.EXTRACT_FILE).is_file() and (out / rundir.SCORES_FILE).is_file():
        done = rundir.read_extract(out)
        if done.inputs_sha256 == record.inputs_sha256 and done.budget == config.budget:
            log.info("%s already holds this run (same inputs); nothing to do", out)
            return done.model_dump()
        if needs.extends_budget and None not in (done.budget, config.budget) and config.budget < done.budget:
            raise rundir.RunDirConflict(f"{out} holds a {config.method} run with budget {done.budget}; a search can "
                                        f"be continued with a larger budget, not a smaller one (or --force)")
    seed_everything(seed)
    # the config goes down only now: every input was checked, and the directory holds this run
    write_json_atomic(out / rundir.CONFIG_FILE, {**record.model_dump(mode="json"), "inputs": inputs})
    write_json_atomic(out / rundir.METADATA_FILE, run_metadata())
    for stale in (rundir.RESULTS_FILE, rundir.LABELS_FILE):  # outputs of an earlier attempt's evaluation
        (out / stale).unlink(missing_ok=True)
    pool = _prepare_pool(config, out, aux.smiles, config.workers)
    ctx = AttackContext(aux_smiles=aux.smiles, seed=seed, pool_path=pool.get("pool_path"), vocab=pool.get("vocab"),
                        steps=config.steps, templates=config.templates, victim=victim,
                        victim_path=config.victim, budget=config.budget, work_dir=out, workers=config.workers)
    if victim is not None and config.budget is not None:
        victim.budget = config.budget
    queries_before = ctx.queries
    if needs.candidates == "pool":  # pool and weak labels are shared preparation, not the score's time
        _ = ctx.aux_labels
        if "write_to" in pool:
            from molleak.candidates.pool import write_pool

            write_pool(pool["write_to"], ctx.records)
    prep = dict(ctx.timings)
    t0 = time.perf_counter()
    output = run_method(ctx, config.method, options)
    seconds_method = time.perf_counter() - t0
    prep_in_method = sum(ctx.timings.get(key, 0.0) - prep.get(key, 0.0) for key in ("pool", "label_aux"))
    order = write_scores(out, output, config.k, seed)
    n_scored = int(np.isfinite(output.scores).sum())
    if n_scored < config.k:
        log.warning("only %d molecules were scored; the top-K holds %d, not %d", n_scored, n_scored, config.k)
    summary: dict[str, Any] = {
        "method": config.method,
        "options": options,
        "role": str(record.role),
        "queries": ctx.queries - queries_before,
        "budget": config.budget,
        "seconds_score": round(seconds_method - prep_in_method, 3),
        "seconds_total": round(time.perf_counter() - t_start, 3),
        "seconds": {k: round(v, 3) for k, v in ctx.timings.items()},
        "k": config.k,
        "n_scored": n_scored,
        "n_topk": int(min(config.k, len(order))),
        "aux": {"path": str(config.aux), "n": len(aux.smiles), "sha256": aux_sha},
        "victim": None if record.victim_ref is None else record.victim_ref.model_dump(),
        "score_info": output.info,
        "inputs_sha256": record.inputs_sha256,
    }
    if ctx._records is not None:
        summary["pool"] = {"source": pool["source"], "key": pool.get("key"), "records": len(ctx.records),
                           "unique": len(ctx.smiles), "sha256": sha256_lines(ctx.smiles)}
    if ctx._aux_labels is not None:
        summary["aux_base_rate_substructure"] = float(np.mean(ctx.aux_labels.substructure))
    write_json_atomic(out / rundir.EXTRACT_FILE, summary)
    log.info("%s: %d molecules scored, top %d written to %s (%d queries, %.1f s score / %.1f s total)",
             config.method, n_scored, summary["n_topk"], out, summary["queries"], summary["seconds_score"],
             summary["seconds_total"])
    return summary
