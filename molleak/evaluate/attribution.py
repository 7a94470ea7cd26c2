"""Attribution metrics: how much of what an attack recovers is there *because* of the private set.

Pure functions on arrays (no model, no files). Every number comes with a 95% interval:

- `auc_estimate`, `precision_at_k`: a score's ranking quality against one label set (the private
  set P, or the disjoint reference set P' as the control);
- `private_only_auc`: among candidates that hit exactly one of P and P', the AUC of the score for
  "hits only P" (0.5 = what a score that knows only the distribution gets);
- `private_only_difference`: the paired bootstrap (the same resampled candidates for both) of that
  AUC between the victim's score and its reference victim's score;
- `membership_metrics`: whole-molecule membership (members vs non-members): AUC and TPR at 1% and
  0.1% FPR, and the one-sided Mann-Whitney p of AUC > 0.5;
- `attribution_report`: all of the above for a victim and its reference, with a verdict in words
  (`molleak.evaluate.verdicts`: what was tested, the statistic, detected or not with the test's power).

Intervals are percentile bootstraps (stratified: positives and negatives are resampled
separately so every replicate has both), except precision@K, whose interval is the Wilson
interval over the K picks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from molleak.errors import InputFileError, MolleakError
from molleak.evaluate import metrics
from molleak.evaluate.metrics import auc_p_value, wilson_interval
from molleak.evaluate.verdicts import extraction_verdict, membership_verdict  # noqa: F401 (re-exported here)
from molleak.ranking import rank_order, roc_auc

log = logging.getLogger(__name__)

DEFAULT_BOOTSTRAP = 1000
LOW_FPRS = (0.01, 0.001)


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% interval (NaN where undefined)."""

    value: float
    lo: float
    hi: float

    def covers(self, x: float) -> bool:
        """Whether the interval contains `x`."""
        return bool(self.lo <= x <= self.hi)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def __format__(self, spec: str) -> str:
        spec = spec or ".3f"
        return f"{self.value:{spec}} [{self.lo:{spec}}, {self.hi:{spec}}]"


_NAN = Estimate(float("nan"), float("nan"), float("nan"))


def _as_arrays(scores: Sequence[float], labels: Sequence[bool], what: str) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    if s.ndim != 1 or s.shape != y.shape:
        raise MolleakError(f"{what}: scores {s.shape} and labels {y.shape} must be 1-D and of equal length")
    keep = np.isfinite(s)
    if not keep.all():
        log.info("%s: dropping %d candidates with a non-finite score", what, int((~keep).sum()))
    return s[keep], y[keep]


def _pos_neg_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    return roc_auc(np.r_[np.ones(pos.size, bool), np.zeros(neg.size, bool)], np.concatenate([pos, neg]))


def _percentile_interval(boot: np.ndarray, value: float) -> Estimate:
    boot = boot[np.isfinite(boot)]
    if boot.size == 0 or not np.isfinite(value):
        return Estimate(value, float("nan"), float("nan"))
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return Estimate(float(value), float(lo), float(hi))


def auc_estimate(
    scores: Sequence[float], labels: Sequence[bool], *, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0
) -> Estimate:
    """ROC-AUC of `scores` for `labels`, with a stratified bootstrap 95% interval."""
    s, y = _as_arrays(scores, labels, "AUC")
    pos, neg = s[y], s[~y]
    value = _pos_neg_auc(pos, neg)
    if not np.isfinite(value):
        return _NAN
    rng = np.random.default_rng(seed)
    boot = np.array([
        _pos_neg_auc(pos[rng.integers(pos.size, size=pos.size)], neg[rng.integers(neg.size, size=neg.size)])
        for _ in range(n_boot)
    ])
    return _percentile_interval(boot, value)


def precision_at_k(scores: Sequence[float], labels: Sequence[bool], k: int, *, seed: int = 0) -> Estimate:
    """Fraction of hits among the top-k candidates (random tie-breaks), with a Wilson interval."""
    s, y = _as_arrays(scores, labels, "precision@K")
    if k < 1:
        raise MolleakError(f"K must be at least 1, got {k}")
    k = min(k, s.size)
    if k == 0:
        return _NAN
    hits = int(y[rank_order(s, seed)[:k]].sum())
    lo, hi = wilson_interval(hits, k)
    return Estimate(hits / k, lo, hi)


def base_rate(labels: Sequence[bool]) -> Estimate:
    """Fraction of all candidates that are hits (what a random top-K would get), Wilson interval."""
    y = np.asarray(labels, dtype=bool)
    lo, hi = wilson_interval(int(y.sum()), y.size)
    return Estimate(float(y.mean()) if y.size else float("nan"), lo, hi)


def tpr_at_fpr(member_scores: np.ndarray, nonmember_scores: np.ndarray, fpr: float) -> float:
    """TPR at the strictest threshold whose FPR is at most `fpr` (higher score = member).

    The member/non-member form of `molleak.evaluate.metrics.tpr_at_fpr`.
    """
    pos = np.asarray(member_scores, dtype=np.float64)
    neg = np.asarray(nonmember_scores, dtype=np.float64)
    if neg.size == 0 or pos.size == 0:
        return float("nan")
    return metrics.tpr_at_fpr(np.r_[np.ones(pos.size, bool), np.zeros(neg.size, bool)], np.r_[pos, neg], fpr)


def membership_metrics(
    member_scores: Sequence[float],
    nonmember_scores: Sequence[float],
    *,
    fprs: Sequence[float] = LOW_FPRS,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> dict[str, object]:
    """Whole-molecule membership: AUC and TPR at low FPR, each with a bootstrap 95% interval.

    Returns:
        {"auc": Estimate, "tpr_at_fpr": {fpr: Estimate}, "p_value": float, "n_members": int,
        "n_nonmembers": int, ...}. `p_value` is the one-sided Mann-Whitney p of AUC > 0.5
        (`metrics.auc_p_value`): valid when members and non-members are exchangeable under the null
        (random draws from one set, as canaries and non-members are).
        A TPR at an FPR below 1/n_nonmembers is computed at FPR 0 (noted in "fpr_resolution").
    """
    pos = np.asarray(member_scores, dtype=np.float64)
    neg = np.asarray(nonmember_scores, dtype=np.float64)
    n_drop = int((~np.isfinite(pos)).sum() + (~np.isfinite(neg)).sum())
    pos, neg = pos[np.isfinite(pos)], neg[np.isfinite(neg)]
    if pos.size == 0 or neg.size == 0:
        raise MolleakError(f"membership: need members and non-members with finite scores, got {pos.size} and {neg.size}")
    rng = np.random.default_rng(seed)
    idx = [(rng.integers(pos.size, size=pos.size), rng.integers(neg.size, size=neg.size)) for _ in range(n_boot)]
    auc = _percentile_interval(np.array([_pos_neg_auc(pos[i], neg[j]) for i, j in idx]), _pos_neg_auc(pos, neg))
    tprs = {}
    for f in fprs:
        boot = np.array([tpr_at_fpr(pos[i], neg[j], f) for i, j in idx])
        tprs[float(f)] = _percentile_interval(boot, tpr_at_fpr(pos, neg, f))
    return {"auc": auc, "tpr_at_fpr": tprs, "p_value": auc_p_value(pos, neg), "n_members": int(pos.size),
            "n_nonmembers": int(neg.size),
            "n_dropped_nonfinite": n_drop, "fpr_resolution": 1.0 / neg.size}


def _private_only_split(
    hits_private: Sequence[bool], hits_reference: Sequence[bool], n: int
) -> tuple[np.ndarray, np.ndarray]:
    hp = np.asarray(hits_private, dtype=bool)
    hr = np.asarray(hits_reference, dtype=bool)
    if hp.shape != (n,) or hr.shape != (n,):
        raise MolleakError(f"private-only test: {n} scores but label arrays of shape {hp.shape} and {hr.shape}")
    return np.flatnonzero(hp & ~hr), np.flatnonzero(hr & ~hp)


def private_only_auc(
    scores: Sequence[float],
    hits_private: Sequence[bool],
    hits_reference: Sequence[bool],
    *,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> Estimate:
    """Among candidates hitting exactly one of P and P', AUC of `scores` for "hits only P".

    0.5 means the score prefers private-only hits no more than reference-only hits, which is what a
    score that knows only the distribution gets; a value near 0.5 is consistent with that, it does not
    show that the score knows nothing of the private set.
    """
    s = np.asarray(scores, dtype=np.float64)
    p_only, r_only = _private_only_split(hits_private, hits_reference, s.size)
    keep = np.r_[p_only, r_only]
    return auc_estimate(s[keep], np.r_[np.ones(p_only.size, bool), np.zeros(r_only.size, bool)],
                        n_boot=n_boot, seed=seed)


def private_only_difference(
    victim_scores: Sequence[float],
    reference_scores: Sequence[float],
    hits_private: Sequence[bool],
    hits_reference: Sequence[bool],
    *,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> dict[str, object]:
    """Paired bootstrap of private-only AUC(victim) - AUC(reference victim).

    Both scores are over the same candidates; each replicate resamples the P-only and the P'-only
    candidates (stratified) and computes both AUCs on that same resample, so the interval of the
    difference reflects the pairing. A difference whose interval lies above 0 means the victim knows
    something specific to its private set that a model trained on equally many molecules from the
    same distribution does not.

    Returns:
        {"victim": Estimate, "reference": Estimate, "difference": Estimate,
         "p_value": one-sided bootstrap p, (1 + replicates with difference <= 0) / (1 + n_boot),
         "n_private_only": int, "n_reference_only": int, "significant": bool}.
    """
    sv = np.asarray(victim_scores, dtype=np.float64)
    sr = np.asarray(reference_scores, dtype=np.float64)
    if sv.shape != sr.shape:
        raise MolleakError(f"private-only difference: victim scores {sv.shape} and reference scores {sr.shape} differ")
    p_only, r_only = _private_only_split(hits_private, hits_reference, sv.size)
    finite = np.isfinite(sv) & np.isfinite(sr)
    p_only, r_only = p_only[finite[p_only]], r_only[finite[r_only]]
    out: dict[str, object] = {"n_private_only": int(p_only.size), "n_reference_only": int(r_only.size)}
    if p_only.size == 0 or r_only.size == 0:
        out.update(victim=_NAN, reference=_NAN, difference=_NAN, p_value=float("nan"), significant=False)
        return out
    rng = np.random.default_rng(seed)
    bv, br = np.empty(n_boot), np.empty(n_boot)
    for b in range(n_boot):
        i = p_only[rng.integers(p_only.size, size=p_only.size)]
        j = r_only[rng.integers(r_only.size, size=r_only.size)]
        bv[b], br[b] = _pos_neg_auc(sv[i], sv[j]), _pos_neg_auc(sr[i], sr[j])
    av, ar = _pos_neg_auc(sv[p_only], sv[r_only]), _pos_neg_auc(sr[p_only], sr[r_only])
    diff = _percentile_interval(bv - br, av - ar)
    out.update(
        victim=_percentile_interval(bv, av),
        reference=_percentile_interval(br, ar),
        difference=diff,
        p_value=float((1 + np.sum(bv - br <= 0)) / (1 + n_boot)),
        significant=bool(diff.lo > 0),
    )
    return out


def ranking_metrics(
    scores: Sequence[float],
    hits_private: Sequence[bool],
    hits_reference: Sequence[bool],
    *,
    ks: Sequence[int] = (50, 100, 200),
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> dict[str, object]:
    """precision@K and AUC of one score against P labels and against P' labels, with base rates."""
    out: dict[str, object] = {}
    for name, labels in (("private", hits_private), ("reference", hits_reference)):
        out[name] = {
            "base_rate": base_rate(labels),
            "auc": auc_estimate(scores, labels, n_boot=n_boot, seed=seed),
            "precision_at_k": {int(k): precision_at_k(scores, labels, int(k), seed=seed) for k in ks},
        }
    out["private_only_auc"] = private_only_auc(scores, hits_private, hits_reference, n_boot=n_boot, seed=seed)
    return out


def attribution_report(
    victim_scores: Sequence[float],
    reference_scores: Sequence[float],
    hits_private: Sequence[bool],
    hits_reference: Sequence[bool],
    *,
    ks: Sequence[int] = (50, 100, 200),
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> dict[str, object]:
    """Ranking metrics for victim and reference victim, the private-only difference, and a verdict.

    Both score arrays must be over the same candidates, produced with identical attack settings.
    """
    diff = private_only_difference(victim_scores, reference_scores, hits_private, hits_reference,
                                   n_boot=n_boot, seed=seed)
    report = {
        "victim": ranking_metrics(victim_scores, hits_private, hits_reference, ks=ks, n_boot=n_boot, seed=seed),
        "reference": ranking_metrics(reference_scores, hits_private, hits_reference, ks=ks, n_boot=n_boot,
                                     seed=seed),
        "private_only": diff,
    }
    report["verdict"] = extraction_verdict(diff)
    return report


def to_jsonable(obj: object) -> object:
    """Turn nested reports (Estimates, numpy scalars, float keys) into JSON-ready structures."""
    if isinstance(obj, Estimate):
        return obj.as_dict()
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def attribute_runs(
    victim_run: str | Path,
    reference_run: str | Path,
    data_dir: str | Path,
    *,
    ks: tuple[int, ...] = (50, 100, 200),
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Attribution of an extraction: the victim's run vs its reference victim's run, same attack settings.

    Reads both runs' `scores.tsv` (every unique pool molecule's score), keeps the molecules scored in
    both, labels them (substructure and exact) against `private.smi` (P) and `reference.smi` (P') with
    the oracle, and returns `attribution_report` per label kind.
    """
    from molleak.data.smiles_io import read_smiles
    from molleak.evaluate.evaluate import bank_labels, read_scores

    def _read(path: Path, what: str) -> list[str]:
        if not path.exists():
            raise InputFileError(f"{what} not found: {path} (make it with `molleak data prepare`)")
        return read_smiles(path, what=what, canonicalize=False).smiles

    data = Path(data_dir)
    victim, reference = read_scores(victim_run), read_scores(reference_run)
    ref_index = {s: i for i, s in enumerate(reference.smiles)}
    shared = [(i, ref_index[s]) for i, s in enumerate(victim.smiles) if s in ref_index]
    if not shared:
        raise MolleakError(f"runs {victim_run} and {reference_run} share no scored molecule; "
                           f"attribution needs both scored over the same pool")
    vi, ri = (np.array(x) for x in zip(*shared, strict=True))
    smiles = [victim.smiles[i] for i in vi]
    lab_p = bank_labels(smiles, _read(data / "private.smi", "private set"), "private")
    lab_r = bank_labels(smiles, _read(data / "reference.smi", "reference set"), "reference")
    out: dict[str, Any] = {"victim_run": str(victim_run), "reference_run": str(reference_run),
                           "n_shared": len(smiles), "n_victim_only": len(victim.smiles) - len(smiles)}
    for kind in ("substructure", "exact"):
        out[kind] = attribution_report(victim.scores[vi], reference.scores[ri],
                                       np.asarray(getattr(lab_p, kind), bool), np.asarray(getattr(lab_r, kind), bool),
                                       ks=ks, n_boot=n_boot, seed=seed)
    return to_jsonable(out)
