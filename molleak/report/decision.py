"""The report's first screen (`decision`), written for the person who decides whether the model may be shared.

It states, from the verdicts the summary model collects (`AuditSummary.verdicts`), in this order:

1. the verdict in one or two sentences, with the power the verdicts carry: a test that does not
   reject is "not detected", never "no leakage", and its power sentence goes with it
   (`molleak.evaluate.verdicts`: "power not measured for this recipe..." when unknown);
2. the few numbers behind it: the strongest one-step attack's precision@K beside the base rate,
   the best victim-free attack and the same attack on the reference victim (headline rows), and the
   shadow-model membership attack's TPR at 1% FPR, white box and black box, with intervals;
3. one plot: the shadow attack's log-log ROC curves (`roc` of its `shadow_membership.json`), else
   the audited victim's precision@K figure;
4. what to do next, derived from the verdicts.

Tests are named in words ("Extraction (private-only test)"), never by the JSON key they were read
from; the file they came from is a muted note. The raw quantities stay in the later sections.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from molleak import rundir
from molleak.errors import InputFileError
from molleak.report.load import AuditData
from molleak.report.markup import esc, missing, scalar
from molleak.report.summary import SHADOW_MEMBERSHIP, AuditSummary, HeadlineRow, Verdict
from molleak.rundir import KINDS, Role, format_estimate

DETECTED, NOT_DETECTED, UNDECIDED = "detected", "not detected", "not decided"
#: `Verdict.test` -> the test's name as the first screen writes it
TEST_NAMES = {
    "private-only test": "Extraction (private-only test)",
    "membership": "Membership (embedding statistic, no shadow models)",
    "shadow-model membership": "Membership (shadow models, LiRA/RMIA)",
}
_QUALIFIERS = {"one_step": "one-step extraction", "two_step": "two-step extraction",
               "substructure": "substructure hits", "exact": "exact hits"}
ACCESS = ("white box", "black box")
FPR_1PCT = "0.01"  # the key of TPR at 1% FPR in a shadow row's `tpr_at_fpr` (str of ShadowPlan.fprs[0])
_POWER = re.compile(r"(this test's power is .*|power not measured.*)$", re.DOTALL)
_RATE = re.compile(r"detection rate of ([0-9.]+) at 1% FPR(?: for a molecule seen (\d+) times)?")


# ---- reading the verdicts ---------------------------------------------------------------------
def verdict_label(verdict: Verdict) -> str:
    """The test in words: "Extraction (private-only test): one-step extraction, substructure hits"."""
    name = TEST_NAMES.get(verdict.test, verdict.test[:1].upper() + verdict.test[1:])
    qualifiers = [_QUALIFIERS[part] for part in verdict.key.split(".")[:-1] if part in _QUALIFIERS]
    return name + (": " + ", ".join(qualifiers) if qualifiers else "")


def outcome(text: str) -> str:
    """`detected`, `not detected` or `not decided` (nothing was tested, or the sentence says neither)."""
    low = text.lower()
    if "nothing was tested" in low or "no statistic computed" in low:
        return UNDECIDED
    # older sentences say "no private-specific leakage detected"
    if "not detected" in low or re.search(r"\bno\b[^.;:]*\bdetected\b", low):
        return NOT_DETECTED
    return DETECTED if re.search(r"\bdetected\b", low) else UNDECIDED


def power_text(text: str) -> str:
    """The power sentence a verdict carries; a verdict without one had no power measured."""
    from molleak.evaluate.verdicts import NO_POWER

    found = _POWER.search(text.strip())
    return found.group(1).strip().rstrip(".") if found else NO_POWER


def measured_power(text: str, power: Mapping[str, Any] | None = None) -> tuple[float, int | None] | None:
    """(detection rate at 1% FPR, times seen) of a measured power, from the block's `power` or the sentence."""
    if isinstance(power, Mapping) and isinstance(power.get("tpr_at_1pct_fpr"), int | float):
        r = power.get("r")
        return float(power["tpr_at_1pct_fpr"]), int(r) if isinstance(r, int) else None
    found = _RATE.search(power_text(text))
    if found is None:
        return None
    return float(found.group(1)), int(found.group(2)) if found.group(2) else None


def power_meaning(name: str, rate: float, seen: int | None) -> str:
    """What a non-detection with a measured power rules out, in words."""
    molecule = f"a training molecule seen {seen} time{'s' if seen != 1 else ''}" if seen else "a training molecule"
    if rate < 0.05:
        return (f"{name}: at this recipe the test catches {molecule} only with probability {rate:.2f} at 1% FPR, "
                f"so its non-detection says next to nothing; do not read it as reassurance.")
    return (f"{name}: at this recipe the test catches {molecule} with probability {rate:.2f} at 1% FPR. Its "
            f"non-detection rules out leakage at least that strong, no more: molecules seen fewer times, or "
            f"weaker leakage, can go unnoticed. Whether that residual risk is acceptable for this data is the "
            f"decision to make.")


# ---- the shadow-model membership block and its results file -----------------------------------
@dataclass
class Shadow:
    """The audit's `shadow_membership` block, where it was read, and its results file when found."""

    source: str
    block: Mapping[str, Any]
    results: dict[str, Any] | None
    path: Path | None
    note: str | None  # why the ROC curves cannot be drawn

    def best(self, access: str) -> Mapping[str, Any] | None:
        row = (self.block.get("best") or {}).get(access)
        return row if isinstance(row, Mapping) else None


def find_shadow(data: AuditData) -> Shadow | None:
    """The first `shadow_membership` block with a verdict, its `shadow_membership.json` read.

    The block's `file` is the directory the audit wrote it to; when the audit folder has moved,
    the same directory name beside the attribution file is tried.
    """
    from molleak.plans.shadows import RESULTS_FILE

    sources = [(src, obj, data.root / Path(src).parent) for src, obj in data.attribution_files]
    sources += [(r.name, r.attribution, r.path) for r in data.runs if r.attribution]
    for source, obj, base in sources:
        block = obj.get(SHADOW_MEMBERSHIP)
        if not isinstance(block, Mapping) or not isinstance(block.get("verdict"), str):
            continue
        given = Path(str(block.get("file") or SHADOW_MEMBERSHIP))
        dirs = [given] if given.is_absolute() else [data.root / given, base / given]
        dirs += [base / given.name, base / SHADOW_MEMBERSHIP]
        path = next((d / RESULTS_FILE for d in dict.fromkeys(dirs) if (d / RESULTS_FILE).is_file()), None)
        if path is None:
            return Shadow(source, block, None, None, f"{RESULTS_FILE} not found in {given} (named by {source}) nor "
                                                     f"beside {source}: the ROC curves cannot be drawn.")
        try:
            results = rundir.read_json(path, "shadow-model membership results")
        except InputFileError as exc:
            return Shadow(source, block, None, path, f"{exc}; the ROC curves cannot be drawn.")
        return Shadow(source, block, results, path, None)
    return None


def shadow_roc(shadow: Shadow) -> str | None:
    """The log-log ROC figure of the best white-box and black-box rows, or None with `shadow.note` set."""
    from molleak.report.plots import Series, roc_figure

    curves = (shadow.results or {}).get("roc")
    if not isinstance(curves, Mapping):
        if shadow.note is None:
            shadow.note = f"{shadow.path} holds no ROC curves (`roc`): they cannot be drawn."
        return None
    series, n_neg = [], []
    for access in ACCESS:
        row = shadow.best(access)
        curve = curves.get(f"{row.get('statistic')}/{row.get('attack')}") if row else None
        if not isinstance(curve, Mapping) or not curve.get("fpr") or len(curve["fpr"]) != len(curve.get("tpr", [])):
            continue
        tpr = (row.get("tpr_at_fpr") or {}).get(FPR_1PCT)
        at = f", TPR {format_estimate(tpr)} at 1% FPR" if tpr else ""
        series.append(Series(f"{access}: {row['statistic']}, {row['attack']}{at}", curve["fpr"], curve["tpr"]))
        if isinstance(row.get("n_nonmembers"), int) and row["n_nonmembers"] > 0:
            n_neg.append(row["n_nonmembers"])
    if not series:
        shadow.note = f"{shadow.path} has no ROC curve for the best white-box or black-box row."
        return None
    positive = [x for s in series for x in s.x if x > 0]
    min_fpr = 1.0 / max(n_neg) if n_neg else (min(positive) if positive else 1e-3)
    return roc_figure(series, "shadow-model membership: best attack per access", min_fpr, log_tpr=True,
                      mark_fpr=0.01)


# ---- the numbers behind the verdict -----------------------------------------------------------
def strongest_one_step(rows: Sequence[HeadlineRow], kmax: int) -> HeadlineRow | None:
    """The victim's row with the highest substructure precision@kmax, one-step attacks first."""
    top = rundir.precision_key(KINDS[0], kmax)
    victim = [r for r in rows if r.role == Role.VICTIM and r.precision.get(top) is not None
              and r.precision[top].value is not None]
    pool = [r for r in victim if r.steps == 1] or victim
    return max(pool, key=lambda r: r.precision[top].value) if pool else None


def numbers_rows(summary: AuditSummary, shadow: Shadow | None) -> list[list[str]]:
    """[quantity, value [95% CI], how to read it] of the first screen's table."""
    rows: list[list[str]] = []
    kmax = summary.kmax
    top = rundir.precision_key(KINDS[0], kmax)
    best = strongest_one_step(summary.rows, kmax)
    if best is not None:
        base = best.base_rate.get(KINDS[0])
        depth = {1: "one-step", 2: "two-step"}.get(best.steps, f"{best.steps}-step")
        rows.append([f"precision@{kmax} of the strongest {depth} attack ({best.method} against {best.victim})",
                     format_estimate(best.precision[top]),
                     "share of the top molecules that contain a fragment of the private set"])
        rows.append(["base rate of the candidate pool", scalar(base),
                     "what ranking the pool at random gets: a precision near it shows nothing"])
        rows.append([f"best victim-free attack on the same pool, precision@{kmax}",
                     scalar(best.prior_precision) if best.prior_precision is not None else "n/a (none run)",
                     "what an attacker gets without querying the model at all"])
        ref = next((r for r in summary.rows if r.role == Role.REFERENCE and r.method == best.method
                    and r.steps == best.steps), None)
        rows.append([f"the same attack on the reference victim, precision@{kmax}",
                     format_estimate(ref.precision[top]) if ref is not None else "n/a (no reference victim run)",
                     "a model trained without the private set: the victim must beat it to show leakage"])
    if shadow is not None:
        for access in ACCESS:
            row = shadow.best(access)
            if row is None:
                continue
            tpr = (row.get("tpr_at_fpr") or {}).get(FPR_1PCT)
            p = row.get("p_holm")
            decided = ("detected" if row.get("detected") else "not detected") + (
                f" (Holm-adjusted p={p:.3g})" if isinstance(p, int | float) and math.isfinite(p) else "")
            rows.append([f"membership, {access} ({row.get('statistic')}, {row.get('attack')}): TPR at 1% FPR",
                         format_estimate(tpr), f"training molecules caught while 1% of others are wrongly "
                                               f"flagged; chance is 0.010; {decided}"])
    return rows


# ---- the section ------------------------------------------------------------------------------
def _names(verdicts: Sequence[Verdict]) -> str:
    return "; ".join(dict.fromkeys(verdict_label(v) for v in verdicts))


def _strength(shadow: Shadow | None) -> str | None:
    """The detected shadow attack's strength in one sentence (its strongest detected access level)."""
    rows = [(a, r) for a in ACCESS if shadow is not None and (r := shadow.best(a)) and r.get("detected")]
    tprs = [(a, r, t) for a, r in rows if isinstance(t := (r.get("tpr_at_fpr") or {}).get(FPR_1PCT), Mapping)
            and isinstance(t.get("value"), int | float)]
    if not tprs:
        return None
    access, _, tpr = max(tprs, key=lambda x: x[2]["value"])
    return (f"The strongest, the {access} shadow attack, recognises a fraction {format_estimate(tpr)} of the "
            f"tested training molecules while wrongly flagging 1% of other molecules (chance: 0.010).")


def headline(verdicts: Sequence[Verdict], shadow: Shadow | None = None) -> tuple[str, str]:
    """(css class, the verdict in one or two sentences)."""
    if not verdicts:
        return "untested", ("Leakage was not tested: no extraction or membership verdict was found in this "
                            "directory. precision@K alone cannot show leakage (it mostly measures how common a "
                            "fragment is), and cannot show its absence either.")
    by = {o: [v for v in verdicts if outcome(v.text) == o] for o in (DETECTED, NOT_DETECTED, UNDECIDED)}
    if by[DETECTED]:
        strength = _strength(shadow) if any(v.test == "shadow-model membership" for v in by[DETECTED]) else None
        text = (f"Leakage detected by {len(by[DETECTED])} of {len(verdicts)} test(s): {_names(by[DETECTED])}. "
                + (strength or "The model gives away information about its training molecules to these attacks."))
        return "detected", text
    if not by[NOT_DETECTED]:
        return "untested", f"No test reached a decision ({_names(verdicts)}): leakage was neither shown nor bounded."
    powers: dict[str, list[Verdict]] = {}
    for v in by[NOT_DETECTED]:
        powers.setdefault(power_text(v.text), []).append(v)
    text = f"Leakage not detected by the {len(by[NOT_DETECTED])} test(s) run ({_names(by[NOT_DETECTED])})."
    if len(powers) == 1:
        text += f" Power: {next(iter(powers))}."
    else:
        text += " Power: " + "; ".join(f"{_names(vs)}: {p}" for p, vs in powers.items()) + "."
    if by[UNDECIDED]:
        text += f" Not decided: {_names(by[UNDECIDED])}."
    return "not-detected", text


def _power_of(verdict: Verdict, shadow: Shadow | None) -> tuple[float, int | None] | None:
    block = shadow.block.get("power") if shadow is not None and verdict.test == "shadow-model membership" else None
    return measured_power(verdict.text, block)


def next_steps(verdicts: Sequence[Verdict], shadow: Shadow | None) -> list[str]:
    """What to do next, in plain words, from the verdicts."""
    if not verdicts:
        return ["Run `molleak audit` on this model: it trains a reference victim, runs the private-only extraction "
                "test and the membership tests, and writes the verdicts this page summarises."]
    steps = []
    detected = [v for v in verdicts if outcome(v.text) == DETECTED]
    quiet = [v for v in verdicts if outcome(v.text) == NOT_DETECTED]
    if detected:
        dp = "differentially private (DP-SGD) pre-training"
        steps.append(f"Do not share the model as is. Consider {dp} or output perturbation at the served API, "
                     "then audit the new model the same way.")
        white, black = (shadow.best(a) if shadow is not None else None for a in ACCESS)
        only_shadow = all(v.test == "shadow-model membership" for v in detected)
        if only_shadow and white and black and white.get("detected") and not black.get("detected"):
            steps.append("The shadow attack succeeds with the weights (white box) but was not detected from "
                         "embeddings alone (black box): serving embeddings behind an API, without releasing the "
                         "weights, removes the detected route; the black-box non-detection still carries its "
                         "power caveat.")
    else:
        powers = [(v, _power_of(v, shadow)) for v in quiet]
        unknown = [v for v, found in powers if found is None]
        if unknown:
            ladder = (" Then re-run the audit with `membership.power_ladder` set to its results file, so that the "
                      "shadow-model verdict quotes the measured power."
                      if any(v.test == "shadow-model membership" for v in unknown) else "")
            steps.append(f"Run `molleak power` for this recipe before concluding ({_names(unknown)}: power not "
                         "measured): a non-detection of a test of unknown power is not evidence that the model may "
                         f"be shared.{ladder}")
        steps += [power_meaning(verdict_label(v), *found) for v, found in powers if found is not None]
    tests = {v.test for v in verdicts}
    if "private-only test" not in tests:
        steps.append("The private-only extraction test was not run: it needs a reference victim trained without "
                     "the private set (`molleak audit` trains one).")
    if "shadow-model membership" not in tests:
        steps.append("The shadow-model membership attack (LiRA/RMIA, the strongest membership test here) was not "
                     "run: set `membership.shadows` (e.g. 8) in the audit's config.")
    for v in verdicts:
        if outcome(v.text) == UNDECIDED:
            steps.append(f"{verdict_label(v)} reached no decision; see its full sentence under Summary.")
    return list(dict.fromkeys(steps))


def decision_section(summary: AuditSummary, data: AuditData) -> str:
    from molleak.report.figures import precision_figure_html, victim_panels
    from molleak.report.markup import table

    shadow = find_shadow(data)
    cls, text = headline(summary.verdicts, shadow)
    parts = [f"<div class='decision {cls}'><p>{esc(text)}</p></div>"]
    if summary.verdicts:
        items = []
        for v in summary.verdicts:
            o = outcome(v.text)
            power = f" {esc(power_text(v.text))}." if o == NOT_DETECTED else ""
            items.append(f"<li><b>{esc(verdict_label(v))}</b>: <span class='outcome {o.replace(' ', '-')}'>{o}</span>."
                         f"{power} <span class='note'>(read from {esc(v.source)})</span></li>")
        parts.append("<ul class='verdict'>" + "".join(items) + "</ul>")
    rows = numbers_rows(summary, shadow)
    parts.append("<h3>The numbers behind it</h3>")
    parts.append(table(["quantity", "value [95% CI]", "how to read it"], rows, "decision") if rows else
                 missing("No evaluated victim run and no shadow-model membership results: no numbers to show."))
    figure = shadow_roc(shadow) if shadow is not None else None
    if figure is not None:
        parts.append(f"<figure>{figure}<figcaption>Shadow-model membership attack, log-log ROC of the best white-box "
                     f"and black-box attack ({esc(shadow.path)}): the higher above the dotted chance line at low "
                     f"false positive rates, the more training molecules are exposed.</figcaption></figure>")
    else:
        if shadow is not None and shadow.note:
            parts.append(missing(shadow.note))
        panels = victim_panels(data)
        best = strongest_one_step(summary.rows, summary.kmax)
        runs = panels.get(best.victim) if best is not None else None
        victim, runs = (best.victim, runs) if runs else next(iter(panels.items()), (None, None))
        drawn = precision_figure_html(victim, runs)[0] if runs else None
        if drawn is not None:
            parts.append(drawn)
    parts.append("<h3>What to do next</h3><ol class='next'>"
                 + "".join(f"<li>{esc(s)}</li>" for s in next_steps(summary.verdicts, shadow)) + "</ol>")
    parts.append("<p class='note'>Every test's full sentence, the headline table and the raw quantities are in the "
                 "sections below.</p>")
    return "\n".join(parts)
