"""Query monitoring: flag extraction-shaped traffic in one key's query log.

molleak's extraction enumerates templates x motifs (many molecules on a few cores, one substituent
changed at a time, and the cores and motifs themselves asked as molecules), and its membership
probing asks a molecule then its one-edit neighbours. A virtual screen asks diverse drug-like
molecules; a similarity search asks analogues of a lead, similar but rarely one edit apart. The
monitor keeps a sliding window of the last `window` distinct molecules a key asked (canonical SMILES
in query order; a molecule asked again is not counted again) and computes, per window:

- `one_edit`: the fraction of the window that has a one-edit neighbour in the window. Two
  molecules are one edit apart (an atom's element changed, a terminal atom added or removed, a bond
  order changed) when their heavy atoms differ by at most one and their Morgan environments of
  radius <= 1, counted with multiplicity, differ in at most `edit_distance` = 16: one edit touches
  at most two atoms, and with valence <= 4 changes at most their own radius-0 and radius-1
  environments and the radius-1 environments of their other neighbours (2 x (2 + 3) pairs of
  environments removed and added, rounded up to 16). Random drug-like molecules differ in dozens.
- `scaffold_repeat`: the fraction of the window whose Bemis-Murcko scaffold (ring systems and
  linkers; acyclic molecules have none and never count) another molecule of the window shares.
- `fragments`: the fraction of the window with at most `fragment_atoms` = 6 heavy atoms (the motifs
  and small cores an enumeration asks; screening libraries, even fragment libraries, are larger).
- `mean_tanimoto`: the mean pairwise Tanimoto similarity (Morgan radius 2, 2048 bits), and
  `per_minute`: molecules per minute over the window's time span (from the log's times). Both are
  reported only: a similarity search is legitimately similar, a large screen legitimately fast.
- `hubs`: the fraction of the window with at least 3 one-edit neighbours in it (a probed molecule and
  its neighbours, a core scanned with many substituents make hubs; a chain of analogues does not).
  Reported only: added after the benchmark showed close-analogue similarity searches trip `one_edit`
  (BENCHMARKS.md, "Query monitoring"), so it is a candidate for a rule, not part of one.

Decision rule, fixed from the design above before any stream was measured (never tuned to one): from
the `min_queries` = 50th molecule on, the monitor fires at the first window (of up to 100) where
`one_edit` >= 0.25 (a quarter of the molecules are one edit from another asked molecule: probing or
a substituent scan), or `scaffold_repeat` >= 0.6 (most molecules sit on repeated cores: a
template enumeration), or `fragments` >= 0.2 (a fifth of the queries are fragments). It reports
how many molecules it had seen when it fired and the statistics there. An attacker who knows the
rule can stay under it (mix in decoys, drop the fragments, spread over keys); the monitor raises the
cost of extraction and gives the provider a reason to look, it does not prevent it.

Read a log with `read_query_log`; run `monitor_stream` on SMILES (and times) in query order.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rdkit import DataStructs
from rdkit.Chem import rdFingerprintGenerator
from rdkit.Chem.Scaffolds import MurckoScaffold

from molleak.chem import rdkit_quiet, to_mol
from molleak.errors import InputFileError

RULES = ("one_edit", "scaffold_repeat", "fragments")


@dataclass(frozen=True)
class MonitorConfig:
    """The window, the one-edit and fragment definitions, and the decision thresholds (see the module)."""

    window: int = 100
    min_queries: int = 50
    edit_distance: int = 16
    fragment_atoms: int = 6
    one_edit: float = 0.25
    scaffold_repeat: float = 0.6
    fragments: float = 0.2

    def thresholds(self) -> dict[str, float]:
        return {rule: getattr(self, rule) for rule in RULES}


@dataclass
class MonitorResult:
    """What the monitor saw in one stream.

    Attributes:
        fired: whether the decision rule fired.
        at: molecules (distinct, in query order) seen when it fired, None if it never did.
        rules: the rules that fired then.
        stats: the statistics of the window it fired on (or of the last window).
        peak: each rule's statistic at its highest over the windows seen (how close a quiet stream came).
        molecules: distinct valid molecules in the stream; `invalid`: SMILES that did not parse.
    """

    fired: bool = False
    at: int | None = None
    rules: list[str] = field(default_factory=list)
    stats: dict[str, float | None] = field(default_factory=dict)
    peak: dict[str, float] = field(default_factory=dict)
    molecules: int = 0
    invalid: int = 0


@dataclass
class _Item:
    heavy: int
    scaffold: str
    fp: Any
    envs: dict[int, int]
    time: float | None
    partners: set[int] = field(default_factory=set)


_MORGAN2 = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
_MORGAN1 = rdFingerprintGenerator.GetMorganGenerator(radius=1)


def env_distance(a: dict[int, int], b: dict[int, int]) -> int:
    """Environments (radius <= 1, with multiplicity) in one molecule and not the other, both ways."""
    return sum(abs(a.get(k, 0) - b.get(k, 0)) for k in a.keys() | b.keys())


def _features(smiles: str, time: float | None) -> _Item | None:
    mol = to_mol(smiles)
    if mol is None:
        return None
    with rdkit_quiet():
        scaffold = MurckoScaffold.MurckoScaffoldSmiles(mol=mol) if mol.GetRingInfo().NumRings() else ""
    return _Item(mol.GetNumHeavyAtoms(), scaffold, _MORGAN2.GetFingerprint(mol),
                 dict(_MORGAN1.GetSparseCountFingerprint(mol).GetNonzeroElements()), time)


class QueryMonitor:
    """The sliding window over one key's stream; `add` each molecule in query order."""

    def __init__(self, config: MonitorConfig | None = None):
        self.config = config or MonitorConfig()
        self.window: deque[tuple[int, _Item]] = deque()
        self.items: dict[int, _Item] = {}
        self.seen: set[str] = set()
        self.scaffolds: Counter[str] = Counter()
        self.sim_sum = 0.0
        self.n_fragments = 0
        self.count = 0
        self.invalid = 0

    def add(self, smiles: str, time: float | None = None) -> dict[str, float | None] | None:
        """Add one queried molecule; the window's statistics, or None (a repeat, invalid, or too early)."""
        if smiles in self.seen:
            return None
        self.seen.add(smiles)
        item = _features(smiles, time)
        if item is None:
            self.invalid += 1
            return None
        cfg, index = self.config, self.count
        self.count += 1
        if self.window:
            others = [it for _, it in self.window]
            self.sim_sum += sum(DataStructs.BulkTanimotoSimilarity(item.fp, [it.fp for it in others]))
            for j, other in self.window:
                if abs(other.heavy - item.heavy) <= 1 and env_distance(item.envs, other.envs) <= cfg.edit_distance:
                    item.partners.add(j)
                    other.partners.add(index)
        self.window.append((index, item))
        self.items[index] = item
        self.scaffolds[item.scaffold] += 1
        self.n_fragments += item.heavy <= cfg.fragment_atoms
        if len(self.window) > cfg.window:
            self._drop()
        return self.stats() if self.count >= cfg.min_queries else None

    def _drop(self) -> None:
        index, old = self.window.popleft()
        del self.items[index]
        self.sim_sum -= sum(DataStructs.BulkTanimotoSimilarity(old.fp, [it.fp for _, it in self.window]))
        for j in old.partners:
            if j in self.items:
                self.items[j].partners.discard(index)
        self.scaffolds[old.scaffold] -= 1
        self.n_fragments -= old.heavy <= self.config.fragment_atoms

    def stats(self) -> dict[str, float | None]:
        """The current window's statistics (see the module)."""
        n = len(self.window)
        if n == 0:
            return {}
        items = [it for _, it in self.window]
        pairs = n * (n - 1) / 2
        times = [it.time for it in items if it.time is not None]
        per_minute = None
        if len(times) == n:
            per_minute = n / max((max(times) - min(times)) / 60, 1 / 60)  # a span under 1 s counts as 1 s
        return {
            "window": n,
            "one_edit": sum(1 for it in items if it.partners) / n,
            "hubs": sum(1 for it in items if len(it.partners) >= 3) / n,
            "scaffold_repeat": sum(1 for it in items if it.scaffold and self.scaffolds[it.scaffold] > 1) / n,
            "fragments": self.n_fragments / n,
            "mean_tanimoto": self.sim_sum / pairs if pairs else 0.0,
            "per_minute": per_minute,
        }

    def fired(self, stats: dict[str, float | None]) -> list[str]:
        """The rules the statistics trip (empty: none)."""
        return [rule for rule, limit in self.config.thresholds().items() if (stats.get(rule) or 0.0) >= limit]


def monitor_stream(smiles: Sequence[str], times: Sequence[float | None] | None = None,
                   config: MonitorConfig | None = None, stop: bool = True) -> MonitorResult:
    """Run the monitor over a stream in query order (`times`: seconds, optional); `stop` at the first alert."""
    monitor = QueryMonitor(config)
    result = MonitorResult()
    for i, s in enumerate(smiles):
        stats = monitor.add(s, None if times is None else times[i])
        if stats is None or result.fired:
            continue
        for rule in RULES:
            result.peak[rule] = max(result.peak.get(rule, 0.0), float(stats[rule] or 0.0))
        if rules := monitor.fired(stats):
            result.fired, result.at, result.rules, result.stats = True, monitor.count, rules, stats
            if stop:
                break
    result.molecules, result.invalid = monitor.count, monitor.invalid
    if not result.fired:
        result.stats = monitor.stats()
    return result


def read_query_log(path: str | Path) -> tuple[list[str], list[float]]:
    """The SMILES a key asked, in order, and each one's request time (seconds since the epoch), from its
    query log (`molleak.serve.keys`). One error naming the line for a line that is not a log entry."""
    path = Path(path)
    smiles: list[str] = []
    times: list[float] = []
    try:
        fh = open(path, encoding="utf-8")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise InputFileError(f"query log {path}: cannot be read ({exc.strerror or exc})") from None
    with fh:
        try:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                where = f"query log {path} line {number}"
                try:
                    entry = json.loads(line)
                except ValueError as exc:
                    raise InputFileError(f"{where}: not JSON ({exc})") from None
                if not isinstance(entry, dict):
                    raise InputFileError(f"{where}: expected a JSON object with 'time' and 'smiles'")
                for name in ("time", "smiles"):
                    if name not in entry:
                        raise InputFileError(f"{where}: missing field {name!r}")
                batch = entry["smiles"]
                if not isinstance(batch, list) or not all(isinstance(s, str) for s in batch):
                    raise InputFileError(f"{where}: 'smiles' is not a list of SMILES strings")
                try:
                    stamp = dt.datetime.fromisoformat(str(entry["time"])).timestamp()
                except ValueError:
                    raise InputFileError(f"{where}: 'time' {entry['time']!r} is not an ISO 8601 time") from None
                smiles.extend(batch)
                times.extend([stamp] * len(batch))
        except UnicodeDecodeError:
            raise InputFileError(f"query log {path}: not UTF-8 text") from None
    return smiles, times
