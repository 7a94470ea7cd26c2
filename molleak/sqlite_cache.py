"""One sqlite key-value store for the disk caches keyed by canonical SMILES (labels, ChemNet activations).

A cache is only ever a shortcut: a file that cannot be read is a miss (the caller recomputes), a
corrupt file is deleted and rewritten, a write that fails is a warning. Concurrent readers and
writers (plan workers on one machine) are serialised by sqlite; every `put` is one transaction.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class SqliteCache:
    """Rows keyed by a text key (`key TEXT PRIMARY KEY`) in one table of one sqlite file.

    Args:
        path: the sqlite file (its directory is made on first use).
        columns: the value columns, e.g. ("substructure INTEGER", "exact INTEGER").
        what: how warnings name the cache, e.g. "label cache".
    """

    def __init__(self, path: str | Path, columns: Sequence[str], what: str):
        self.path = Path(path)
        self.columns = tuple(columns)
        self.what = what

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=60)
        con.execute(f"CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, {', '.join(self.columns)})")
        return con

    def _discard_if_corrupt(self, exc: sqlite3.Error) -> bool:
        """Delete a corrupt cache file (truncated, overwritten, not sqlite) so the next write starts afresh.

        Only plain `DatabaseError` ("file is not a database", "database disk image is malformed")
        means corruption; `OperationalError` (locked, read-only, disk full) leaves the file alone.
        """
        if type(exc) is not sqlite3.DatabaseError:
            return False
        log.warning("%s %s is corrupt (%s); discarding it, its entries are recomputed and cached afresh",
                    self.what, self.path, exc)
        for extra in ("", "-journal", "-wal", "-shm"):
            try:
                Path(str(self.path) + extra).unlink(missing_ok=True)
            except OSError as err:
                log.warning("could not remove the corrupt %s %s (%s)", self.what, self.path, err)
        return True

    def get(self, keys: Sequence[str]) -> dict[str, tuple[Any, ...]]:
        """The stored rows (values only) of those `keys` that are present; {} when unreadable."""
        if not self.path.is_file() or not keys:
            return {}
        out: dict[str, tuple[Any, ...]] = {}
        try:
            con = self._connect()
            try:
                con.execute("CREATE TEMP TABLE q (key TEXT PRIMARY KEY)")
                con.executemany("INSERT OR IGNORE INTO q VALUES (?)", ((k,) for k in keys))
                for row in con.execute("SELECT e.* FROM entries e JOIN q USING (key)"):
                    out[row[0]] = tuple(row[1:])
            finally:
                con.close()
        except sqlite3.Error as exc:
            if not self._discard_if_corrupt(exc):
                log.warning("%s %s unreadable (%s); recomputing", self.what, self.path, exc)
            return {}
        return out

    def put(self, rows: Mapping[str, Sequence[Any]], *, retry: bool = True) -> None:
        """Store (or replace) rows, all in one transaction: readers see all of them or none."""
        if not rows:
            return
        marks = ", ".join("?" * (1 + len(self.columns)))
        try:
            con = self._connect()
            try:
                with con:
                    con.executemany(f"INSERT OR REPLACE INTO entries VALUES ({marks})",
                                    ((k, *v) for k, v in rows.items()))
            finally:
                con.close()
        except sqlite3.Error as exc:
            if retry and self._discard_if_corrupt(exc):
                self.put(rows, retry=False)
                return
            log.warning("could not write the %s %s (%s)", self.what, self.path, exc)
