"""Output defences of the served victim: what the API returns instead of the raw embedding.

A `Defence` is configured per deployment (`molleak serve --defence KEY=VALUE`) or per key (a
`[keys.NAME.defence]` table in the keys file, which replaces the deployment's for that key). Steps,
applied in this order to each row (in float64):

1. `normalize = true`: scale the row to unit L2 norm (hides the norm, which the membership `norm`
   statistic reads; a zero row stays zero).
2. `top_k = k`: keep the k dimensions of largest magnitude, zero the rest (as truncating a
   classifier's answer to its top-k classes).
3. `noise_std = s`: add Gaussian noise N(0, s^2) to every dimension. The noise of a row is drawn from
   a generator seeded by sha256(server secret, key name, canonical SMILES): the same key asking for
   the same molecule (in any SMILES spelling) gets the same answer, so averaging repeated queries
   gains nothing. Two colluding keys get independent noise (averaging k keys divides the noise's
   standard deviation by sqrt(k)), and so do neighbouring molecules: the defence bounds what one
   answer tells, not what many different molecules tell together. The secret is what makes the
   noise unpredictable; it is kept beside the query logs (`defence_secret`, made once) or given in
   MOLLEAK_DEFENCE_SECRET, so answers stay the same across restarts.
4. `quantize_bits = b` with `quantize_range = [lo, hi]`: clip to [lo, hi] and round to the nearest
   of 2**b evenly spaced levels (lo and hi included): at most 2**b distinct values per dimension.
   Or `round_decimals = d`: round to d decimal places. Not both.

Quantisation last: it is post-processing of the noisy answer, so its values are the stated levels.
`Defence()` (nothing set) returns the victim's rows untouched, bit for bit.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from molleak.errors import MolleakError

#: environment variable holding the server secret that seeds the noise (else the file below)
SECRET_ENV = "MOLLEAK_DEFENCE_SECRET"
SECRET_FILE = "defence_secret"


class Defence(BaseModel):
    """One output defence (all steps optional; none set: the identity)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    normalize: bool = Field(False, description="scale each row to unit L2 norm")
    top_k: int | None = Field(None, ge=1, description="keep the k largest-magnitude dimensions, zero the rest")
    noise_std: float | None = Field(None, gt=0, allow_inf_nan=False, description="Gaussian noise scale per dimension")
    quantize_bits: int | None = Field(None, ge=1, le=16, description="uniform quantisation to 2**b levels")
    quantize_range: tuple[float, float] | None = Field(None, description="[lo, hi] of the quantisation levels")
    round_decimals: int | None = Field(None, ge=0, le=10, description="round to d decimal places")

    @model_validator(mode="after")
    def _check(self) -> Defence:
        if self.quantize_bits is not None and self.round_decimals is not None:
            raise ValueError("quantize_bits and round_decimals exclude each other")
        if (self.quantize_bits is None) != (self.quantize_range is None):
            raise ValueError("quantize_bits needs quantize_range = [lo, hi] (and the range needs the bits)")
        if self.quantize_range is not None:
            lo, hi = self.quantize_range
            if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
                raise ValueError(f"quantize_range must be finite with lo < hi, got {list(self.quantize_range)}")
        return self

    @property
    def active(self) -> bool:
        return bool(self.record())

    def record(self) -> dict[str, Any]:
        """The settings in force (what the query log and /health show); {} for none."""
        out = self.model_dump(exclude_defaults=True)
        if "quantize_range" in out:
            out["quantize_range"] = list(out["quantize_range"])
        return out

    def describe(self) -> str:
        rec = self.record()
        return ", ".join(f"{k}={v}" for k, v in rec.items()) if rec else "none"

    def apply(self, rows: np.ndarray, smiles: list[str], key_name: str, secret: bytes) -> np.ndarray:
        """The defended rows of `rows` (one per canonical SMILES in `smiles`, asked by `key_name`)."""
        if not self.active:
            return rows
        out = np.asarray(rows, dtype=np.float64).copy()
        if out.ndim != 2 or out.shape[0] != len(smiles):
            raise MolleakError(f"defence: expected {len(smiles)} rows, got an array of shape {out.shape}")
        if self.normalize:
            norm = np.linalg.norm(out, axis=1, keepdims=True)
            out = np.divide(out, norm, out=np.zeros_like(out), where=norm > 0)
        if self.top_k is not None and self.top_k < out.shape[1]:
            drop = np.argsort(-np.abs(out), axis=1, kind="stable")[:, self.top_k:]
            np.put_along_axis(out, drop, 0.0, axis=1)
        if self.noise_std is not None:
            for i, s in enumerate(smiles):
                out[i] += self.noise_std * noise_generator(secret, key_name, s).standard_normal(out.shape[1])
        if self.quantize_bits is not None and self.quantize_range is not None:
            out = quantize(out, self.quantize_bits, *self.quantize_range)
        elif self.round_decimals is not None:
            out = np.round(out, self.round_decimals)
        return out


class DefendedVictim:
    """A victim whose answers pass through a defence in process: what one key of the served API gets.

    For measuring a defence without a server (`molleak.plans.defences`); the served API applies the
    same `Defence.apply` to the same canonical SMILES, so the rows are the same.
    """

    def __init__(self, victim: Any, defence: Defence, key_name: str, secret: bytes):
        self.victim, self.defence, self.key_name, self.secret = victim, defence, key_name, secret

    def embed(self, smiles: list[str]) -> np.ndarray:
        from molleak.chem import canonical_smiles

        keys = [canonical_smiles(s) or s for s in smiles]
        return self.defence.apply(self.victim.embed(smiles), keys, self.key_name, self.secret)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.victim, name)


def quantize(x: np.ndarray, bits: int, lo: float, hi: float) -> np.ndarray:
    """Clip to [lo, hi] and snap to the nearest of 2**bits evenly spaced levels from lo to hi."""
    levels = 2**bits - 1
    step = (hi - lo) / levels
    index = np.rint((np.clip(x, lo, hi) - lo) / step)
    return lo + index * step


def noise_generator(secret: bytes, key_name: str, smiles: str) -> np.random.Generator:
    """The generator of one (key, molecule)'s noise: the same inputs, the same draws."""
    digest = hashlib.sha256(b"\0".join([secret, key_name.encode(), smiles.encode()])).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def server_secret(log_dir: Path) -> bytes:
    """The secret that seeds the noise: MOLLEAK_DEFENCE_SECRET, else `log_dir/defence_secret` (made once,
    owner-readable only), so the same molecule gets the same noise across restarts."""
    if env := os.environ.get(SECRET_ENV):
        return env.encode()
    path = log_dir / SECRET_FILE
    try:
        if not path.is_file():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32) + "\n")
        text = path.read_text().strip()
    except OSError as exc:
        raise MolleakError(f"defence secret {path}: cannot be read or made ({exc.strerror or exc})") from None
    if not text:
        raise MolleakError(f"defence secret {path} is empty; delete it to make a new one")
    return text.encode()


def _value(text: str) -> Any:
    import json

    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_defence_options(options: list[str] | None) -> Defence:
    """`--defence KEY=VALUE` options (VALUE as JSON: 0.1, 8, true, [-1, 1]) as a validated `Defence`."""
    raw: dict[str, Any] = {}
    for option in options or []:
        key, sep, value = option.partition("=")
        if not sep or not key.strip():
            raise MolleakError(f"--defence {option!r}: expected KEY=VALUE (keys: {', '.join(Defence.model_fields)})")
        raw[key.strip()] = _value(value.strip())
    try:
        return Defence.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        msg = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        known = f" (keys: {', '.join(Defence.model_fields)})" if first["type"] == "extra_forbidden" else ""
        raise MolleakError(f"--defence: {where + ': ' if where else ''}{msg}{known}") from None
