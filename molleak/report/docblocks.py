"""The demo's headline tables in README.md and BENCHMARKS.md, written from a run and checked against one.

A documented table sits between two markers, `<!-- figures:NAME begin -->` and `<!-- figures:NAME end -->`,
where NAME is `demo-<tier>` (`demo-small`: `make demo`; `demo-tiny`: `molleak demo --tier tiny`) or
`demo-<tier>-seeds` (the demo at several victim seeds, `render_seeds_block`). Its
content is rendered from an audit directory's `audit.json` by the demo's own printer
(`plans.audit.format_table`, without the wall-time column, and the verdict lines the demo prints), so
the documents hold exactly what a run printed: `write_blocks` replaces the blocks, `check_blocks` returns
a diff when a fresh run disagrees with them. `scripts/figures.py` is the command line.
"""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path

from molleak.errors import InputFileError, MolleakError

AUDIT_FILE = "audit.json"
CONFIG_FILE = "config.json"


def begin_marker(name: str) -> str:
    return f"<!-- figures:{name} begin -->"


def end_marker(name: str) -> str:
    return f"<!-- figures:{name} end -->"


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise InputFileError(f"{path}: no such file (is this a finished `molleak demo` directory?)")
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InputFileError(f"{path}: not readable as JSON ({e})") from e
    if not isinstance(obj, dict):
        raise InputFileError(f"{path}: expected a JSON object")
    return obj


def _demo_inputs(audit_dir: str | Path, *, any_victim_seed: bool = False) -> dict:
    """The audit inputs of a run of the shipped demo config (its tier aside, and with `any_victim_seed`
    its victim seed); anything else is refused."""
    from molleak.config import load_config

    path = Path(audit_dir) / CONFIG_FILE
    inputs = _read_json(path).get("inputs")
    if not isinstance(inputs, dict) or not isinstance(inputs.get("data"), dict):
        raise InputFileError(f"{path}: no audit inputs (not written by `molleak demo` / `molleak audit`)")
    demo = load_config(None)
    demo.data.tier = inputs["data"].get("tier")
    if any_victim_seed and isinstance(inputs.get("victim"), dict):
        demo.victim.seed = inputs["victim"].get("seed")
    expected = json.loads(json.dumps(demo.model_dump(mode="json")))
    if inputs != expected:
        differ = sorted(k for k in expected.keys() | inputs.keys() if expected.get(k) != inputs.get(k))
        raise MolleakError(f"{path}: not the shipped demo config (tier{' and victim seed' if any_victim_seed else ''} "
                           f"aside; sections differing: {', '.join(differ)}); only a `molleak demo` run is documented")
    return inputs


def demo_block_name(audit_dir: str | Path) -> str:
    """`demo-<tier>` for an audit of the shipped demo config; anything else is refused.

    A table documented as the demo's must come from the demo's config (its tier aside): the same data,
    recipe and seeds, so that anyone re-running `molleak demo` can reproduce it.
    """
    return f"demo-{_demo_inputs(audit_dir)['data']['tier']}"


def seeds_block_name(audit_dirs: list[str | Path]) -> str:
    """`demo-<tier>-seeds` for runs of the demo config that differ only in the victim's seed (all distinct)."""
    inputs = [_demo_inputs(d, any_victim_seed=True) for d in audit_dirs]
    tiers = {i["data"]["tier"] for i in inputs}
    seeds = [i["victim"]["seed"] for i in inputs]
    if len(tiers) != 1:
        raise MolleakError(f"the runs are of different tiers ({', '.join(sorted(tiers))})")
    if len(set(seeds)) != len(seeds) or len(seeds) < 2:
        raise MolleakError(f"need two or more runs with distinct victim seeds, got seeds {seeds}")
    return f"demo-{tiers.pop()}-seeds"


def render_seeds_block(audit_dirs: list[str | Path]) -> str:
    """The demo over victim seeds: each victim-dependent headline row and each test, over the seeds.

    A value over seeds is `aggregate.fmt`'s: the mean with a 95% bootstrap interval over the seeds from
    5 seeds on, else the mean with the range and n. The victim-free rows do not depend on the victim's
    seed and are left out. A test is counted as detected in a seed at its one-sided 5% level, and again
    after Holm's correction across the seeds (one family per test).
    """
    from molleak.evaluate.metrics import holm_adjust
    from molleak.plans.bench.aggregate import fmt, summarize
    from molleak.report.summary import HeadlineRow

    dirs = [Path(d) for d in audit_dirs]
    seeds = [_demo_inputs(d, any_victim_seed=True)["victim"]["seed"] for d in dirs]
    rows_by_run: dict[str, list[HeadlineRow]] = {}
    for d in dirs:
        rows = _read_json(d / AUDIT_FILE).get("headline") or []
        for r in (HeadlineRow.model_validate(x) for x in rows):
            if r.role_label != "victim-free":
                rows_by_run.setdefault(", ".join(r.runs), []).append(r)
    # the largest K the evaluation reported (as the demo's own table)
    k = max((int(key.rsplit("@", 1)[1]) for rows in rows_by_run.values() for r in rows for key in r.precision),
            default=200)
    header = ["run", "role", f"P_sub@{k}", "base_sub", f"P_exact@{k}", "AUC"]
    table = [header]

    def over(values: list[float | None], digits: int = 3) -> str:
        return fmt(summarize(values), digits)

    for run, rows in rows_by_run.items():
        if len(rows) != len(dirs):
            raise MolleakError(f"row {run} is missing from {len(dirs) - len(rows)} of the runs")

        def values(fn, _rows=rows) -> list[float | None]:
            out = []
            for r in _rows:
                e = fn(r)
                out.append(None if e is None else e.value if hasattr(e, "value") else e)
            return out

        table.append([run, rows[0].role_label,
                      over(values(lambda r: r.precision.get(f"precision_substructure@{k}"))),
                      over(values(lambda r: r.base_rate.get("substructure"))),
                      over(values(lambda r: r.precision.get(f"precision_exact@{k}"))),
                      over(values(lambda r: r.auc))])
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    out = [f"victim seeds {', '.join(map(str, sorted(seeds)))} (n={len(seeds)}); attack seed 0; "
           "mean over seeds [95% bootstrap interval over seeds] from 5 seeds, else (range, n)", "```", *lines, "```", ""]
    attributions = [_read_json(d / "attribution.json") for d in dirs]
    tests = [(f"{steps} private-only test (substructure): AUC difference victim - reference victim",
              lambda a, s=steps: (a.get(s) or {}).get("substructure", {}).get("private_only", {}))
             for steps in ("one_step", "two_step")]
    tests.append(("whole-molecule membership (norm): victim AUC",
                  lambda a: {"difference": a.get("membership", {}).get("rows", {}).get("victim", {}).get("auc"),
                             "p_value": a.get("membership", {}).get("rows", {}).get("victim", {}).get("p_value")}))
    for label, get in tests:
        blocks = [get(a) or {} for a in attributions]
        est = [(b.get("difference") or {}).get("value") for b in blocks]
        ps = [b.get("p_value") for b in blocks]
        finite = [p for p in ps if p is not None and p == p]
        if not finite:
            continue
        raw = sum(p < 0.05 for p in finite)
        holm = sum(p < 0.05 for p in holm_adjust(finite))
        out.append(f"- {label}: {over(est)}; detected (one-sided p < 0.05) in {raw} of {len(finite)} seeds, "
                   f"{holm} of {len(finite)} after Holm's correction across the seeds")
    return "\n".join(out) + "\n"


def render_block(audit_dir: str | Path) -> str:
    """The documented block's content for an audit directory: the headline table and the verdicts.

    Exactly what `molleak demo` prints at its end, less the wall times (they differ from run to run).
    """
    from molleak.plans.audit import format_table

    path = Path(audit_dir) / AUDIT_FILE
    audit = _read_json(path)
    rows = audit.get("headline")
    if not isinstance(rows, list) or not rows:
        raise InputFileError(f"{path}: no headline rows")
    table = format_table(rows, seconds=False)
    lines = ["```"] + [line.rstrip() for line in table.splitlines()] + ["```"]  # no trailing padding in Markdown
    verdicts = audit.get("verdicts") or {}
    if verdicts:
        lines.append("")
        lines += [f"- `{name}`: {text}" for name, text in verdicts.items()]
    return "\n".join(lines) + "\n"


def _block_pattern(name: str) -> re.Pattern[str]:
    return re.compile(re.escape(begin_marker(name)) + r"\n(.*?)" + re.escape(end_marker(name)), re.DOTALL)


def _replace(text: str, name: str, content: str, where: str) -> str | None:
    """`text` with every block NAME holding `content`; None when it has no such block."""
    pattern = _block_pattern(name)
    if not pattern.search(text):
        if begin_marker(name) in text:
            raise MolleakError(f"{where}: {begin_marker(name)} without a matching {end_marker(name)}")
        return None
    return pattern.sub(lambda m: begin_marker(name) + "\n" + content + end_marker(name), text)


def _updates(docs: list[Path], name: str, content: str) -> dict[Path, tuple[str, str]]:
    """For each document holding block NAME: (current text, text with the block rendered afresh)."""
    out: dict[Path, tuple[str, str]] = {}
    for doc in docs:
        if not doc.is_file():
            raise InputFileError(f"{doc}: no such document")
        text = doc.read_text()
        new = _replace(text, name, content, str(doc))
        if new is not None:
            out[doc] = (text, new)
    if not out:
        raise MolleakError(f"no document among {', '.join(map(str, docs))} holds {begin_marker(name)}")
    return out


def check_blocks(docs: list[Path], name: str, content: str) -> str:
    """A unified diff of the documents against `content` in their NAME blocks; empty when they agree."""
    diff: list[str] = []
    for doc, (old, new) in _updates(docs, name, content).items():
        diff += difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                     fromfile=f"{doc} (documented)", tofile=f"{doc} (from the run)")
    return "".join(diff)


def write_blocks(docs: list[Path], name: str, content: str) -> list[Path]:
    """Write `content` into every NAME block of the documents (atomically); returns those changed."""
    from molleak.runs import write_atomic

    changed = []
    for doc, (old, new) in _updates(docs, name, content).items():
        if new != old:
            write_atomic(doc, new)
            changed.append(doc)
    return changed
