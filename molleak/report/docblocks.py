"""The demo's headline tables in README.md and BENCHMARKS.md, written from a run and checked against one.

A documented table sits between two markers, `<!-- figures:NAME begin -->` and `<!-- figures:NAME end -->`,
where NAME is `demo-<tier>` (`demo-small`: `make demo`; `demo-tiny`: `molleak demo --tier tiny`). Its
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


def demo_block_name(audit_dir: str | Path) -> str:
    """`demo-<tier>` for an audit of the shipped demo config; anything else is refused.

    A table documented as the demo's must come from the demo's config (its tier aside): the same data,
    recipe and seeds, so that anyone re-running `molleak demo` can reproduce it.
    """
    from molleak.config import load_config

    path = Path(audit_dir) / CONFIG_FILE
    inputs = _read_json(path).get("inputs")
    if not isinstance(inputs, dict) or not isinstance(inputs.get("data"), dict):
        raise InputFileError(f"{path}: no audit inputs (not written by `molleak demo` / `molleak audit`)")
    tier = inputs["data"].get("tier")
    demo = load_config(None)
    demo.data.tier = tier
    expected = json.loads(json.dumps(demo.model_dump(mode="json")))
    if inputs != expected:
        differ = sorted(k for k in expected.keys() | inputs.keys() if expected.get(k) != inputs.get(k))
        raise MolleakError(f"{path}: not the shipped demo config (tier aside; sections differing: "
                           f"{', '.join(differ)}); only a `molleak demo` run is documented")
    return f"demo-{tier}"


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
