"""API keys of the served victim: the keys file, each key's budget and rate limit, and its query log.

Keys file (TOML, or JSON when it ends in `.json`; unknown keys rejected). Only the sha256 of each
key is stored, so the file holds no secret:

    [keys.alice]
    sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"  # of the key text
    budget = 10000   # molecules this key may have computed, ever (omit: unlimited)
    rate = 5.0       # requests per second, sustained (omit: unlimited)
    burst = 10       # requests allowed at once above the rate
    [keys.alice.defence]  # optional output defence for this key (replaces `molleak serve --defence`)
    noise_std = 0.05      # see molleak.serve.defences for every setting

Query log: one JSONL file per key, `<log_dir>/<name>.jsonl`, appended (never rewritten) with a line
per answered request: `time` (UTC, ISO 8601), `n` (molecules asked), `computed` (newly computed by
the model), `charged` (new for this key), `smiles` (the canonical SMILES answered), `defence` (the output
defence's settings applied to the answer, {} for none). A provider keeps
it to look for extraction (many near-duplicate queries, a key sweeping a chemical space: `molleak
monitor`, `molleak.serve.monitor`). On start
the logs are read back: what each key spent and which molecules it was answered survive a restart.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import threading
import time
from pathlib import Path
from typing import IO

from pydantic import BaseModel, ConfigDict, Field

from molleak.errors import InputFileError
from molleak.serve.defences import Defence, server_secret

log = logging.getLogger(__name__)


class KeySpec(BaseModel):
    """One API key."""

    model_config = ConfigDict(extra="forbid")

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 (hex) of the key text")
    budget: int | None = Field(None, ge=1)
    rate: float | None = Field(None, gt=0, allow_inf_nan=False)
    burst: int = Field(10, ge=1)
    defence: Defence | None = Field(None, description="output defence for this key (default: the deployment's)")


class KeysFile(BaseModel):
    """The keys file: named keys (names are file names of the query logs)."""

    model_config = ConfigDict(extra="forbid")

    keys: dict[str, KeySpec] = Field(min_length=1)


def key_sha256(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def load_keys(path: str | Path) -> KeysFile:
    """Read and validate a keys file; one clear error otherwise."""
    import re

    from molleak.config import load_toml

    keys = load_toml(path, KeysFile, "keys file")
    for name in keys.keys:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name) or name.startswith("."):
            raise InputFileError(f"keys file {path}: key name {name!r}: use letters, digits, _ . - (it names a log file)")
    hashes = [k.sha256 for k in keys.keys.values()]
    if len(set(hashes)) != len(hashes):
        raise InputFileError(f"keys file {path}: two names have the same key sha256")
    return keys


class TokenBucket:
    """`rate` requests per second sustained, `burst` at once; `take()` gives 0 or the seconds to wait."""

    def __init__(self, rate: float | None, burst: int):
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = float(burst), time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> float:
        if self.rate is None:
            return 0.0
        with self._lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return 0.0
            return (1.0 - self.tokens) / self.rate


class KeyState:
    """What one key has spent, which molecules it was answered, its rate limit and its log."""

    def __init__(self, name: str, spec: KeySpec, log_dir: Path, defence: Defence | None = None):
        self.name, self.spec = name, spec
        self.defence = spec.defence if spec.defence is not None else (defence or Defence())
        self.bucket = TokenBucket(spec.rate, spec.burst)
        self.used = 0
        self.seen: set[str] = set()
        self.log_path = log_dir / f"{name}.jsonl"
        self._replay()
        self._log: IO[str] = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115 (held open, closed by close())

    def _replay(self) -> None:
        if not self.log_path.is_file():
            return
        with open(self.log_path, encoding="utf-8", errors="replace") as fh:
            for number, line in enumerate(fh, 1):
                try:
                    entry = json.loads(line)
                    self.used += int(entry["charged"])
                    self.seen.update(entry["smiles"])
                except (ValueError, KeyError, TypeError):
                    log.warning("query log %s line %d is unreadable (cut short?); skipped", self.log_path, number)
        log.info("key %s: %d molecules spent so far (from %s)", self.name, self.used, self.log_path)

    def retry_after(self) -> int:
        """0 if a request may go now, else whole seconds to wait (for Retry-After)."""
        wait = self.bucket.take()
        return 0 if wait <= 0 else max(1, math.ceil(wait))

    def record(self, n: int, computed: int, charged: int, smiles: list[str]) -> None:
        """Charge the key and append the request to its log (the caller holds the server's lock)."""
        self.used += charged
        self.seen.update(smiles)
        entry = {"time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"), "n": n,
                 "computed": computed, "charged": charged, "smiles": smiles, "defence": self.defence.record()}
        self._log.write(json.dumps(entry, separators=(",", ":")) + "\n")
        self._log.flush()

    def close(self) -> None:
        self._log.close()


class Keys:
    """Every key's state, looked up by the sha256 of the presented key."""

    def __init__(self, keys: KeysFile, log_dir: str | Path, defence: Defence | None = None):
        log_dir = Path(log_dir)
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputFileError(f"query log directory {log_dir} cannot be made ({exc.strerror or exc})") from None
        self.log_dir = log_dir
        self.defence = defence or Defence()  # the deployment's; a key's own replaces it
        self.states = {spec.sha256: KeyState(name, spec, log_dir, self.defence) for name, spec in keys.keys.items()}
        noisy = any(s.defence.noise_std is not None for s in self.states.values())
        self.secret = server_secret(log_dir) if noisy else b""

    def find(self, key: str | None) -> KeyState | None:
        return None if not key else self.states.get(key_sha256(key))

    def close(self) -> None:
        for state in self.states.values():
            state.close()
