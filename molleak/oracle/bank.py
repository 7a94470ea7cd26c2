"""A bank of molecules to label candidates against, with a bit-sliced pattern-fingerprint index.

The index stores, for each of the 2,048 bits of RDKit's `PatternFingerprint`, the set of bank
molecules that have the bit, as a packed bit array. A candidate can only be a substructure of
molecules whose fingerprint holds every bit of its own, so the screen is an AND of the bank
columns of the candidate's bits, rarest bits first (a candidate found nowhere is usually ruled out
after a few columns). Survivors are confirmed with `HasSubstructMatch` (chirality ignored).

Building the index costs about 0.4 ms of CPU per bank molecule; it is built over worker processes
and cached on disk under the bank's sha256 (`<cache dir>/banks/`), so a bank is indexed once.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import re
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rdkit import Chem

from molleak.chem import default_workers, parse_bounded, rdkit_quiet
from molleak.errors import InputFileError
from molleak.runs import sha256_lines

log = logging.getLogger(__name__)

FP_BITS = 2048
MAX_DECODED = 250_000  # decoded RDKit molecules take about 5 kB each: keep at most ~1.2 GB of them
_TRANSPOSE_BLOCK = 1 << 16  # molecules per block when building the columns (a multiple of 64)
INDEX_VERSION = 1  # bump when the index layout or fingerprint changes: old cache files are ignored


def default_cache_dir() -> Path:
    """`$MOLLEAK_CACHE_DIR`, else `~/.cache/molleak`."""
    env = os.environ.get("MOLLEAK_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "molleak"


def resolve_cache_dir(cache_dir: str | os.PathLike | bool | None) -> Path | None:
    """None/True: the default cache dir; False: no disk cache; a path: that directory."""
    if cache_dir is False:
        return None
    if cache_dir is None or cache_dir is True:
        return default_cache_dir()
    return Path(cache_dir)


_STEREO_OR_ISOTOPE = re.compile(r"[@/\\]|\[\d")


def exact_key(mol: Chem.Mol, canonical: str | None = None) -> str:
    """The identity used for exact hits: canonical SMILES without stereo (chirality ignored).

    Args:
        mol: the molecule.
        canonical: its canonical isomeric SMILES if already known; reused when it holds no stereo
            or isotope, since then it is the same string.
    """
    if canonical is not None and not _STEREO_OR_ISOTOPE.search(canonical):
        return canonical
    return Chem.MolToSmiles(mol, isomericSmiles=False)


def pattern_bits(mols: Sequence[Chem.Mol]) -> np.ndarray:
    """Boolean [n, FP_BITS] pattern fingerprints."""
    if not mols:
        return np.zeros((0, FP_BITS), dtype=bool)
    text = "".join(Chem.PatternFingerprint(m, FP_BITS).ToBitString() for m in mols)
    return np.frombuffer(text.encode("ascii"), dtype=np.uint8).reshape(len(mols), FP_BITS) == ord("1")


def _index_chunk(smiles: list[str]) -> tuple[np.ndarray, list[bytes | None], list[str | None], float]:
    cpu0 = time.process_time()
    with rdkit_quiet():
        mols = [parse_bounded(s) for s in smiles]  # None for invalid or oversized (RDKit crashes on huge ones)
    ok = [m for m in mols if m is not None]
    bits = np.zeros((len(smiles), FP_BITS // 8), dtype=np.uint8)  # row-packed: 256 bytes per molecule
    if ok:
        rows = [i for i, m in enumerate(mols) if m is not None]
        bits[rows] = np.packbits(pattern_bits(ok), axis=1)
    binaries = [m.ToBinary() if m is not None else None for m in mols]
    # Re-canonicalise: the bank may be given non-canonical SMILES, and exact keys must be canonical.
    keys = [exact_key(m, Chem.MolToSmiles(m)) if m is not None else None for m in mols]
    return bits, binaries, keys, time.process_time() - cpu0


class Bank:
    """Molecules that candidates are labelled against (the private set in evaluation, aux for weak labels).

    Args:
        smiles: the bank's SMILES (canonical preferred; duplicates are dropped).
        name: how to call the bank in messages.
        cache_dir: where to cache the index (None: default, False: no disk cache).
        workers: processes for building the index (default: the usable cores).

    Attributes:
        smiles: unique SMILES in first-seen order.
        sha256: sha256 of the sorted unique SMILES: the bank's identity in every cache key.
    """

    def __init__(
        self,
        smiles: Sequence[str],
        *,
        name: str = "bank",
        cache_dir: str | os.PathLike | bool | None = None,
        workers: int | None = None,
    ):
        self.smiles = list(dict.fromkeys(s for s in smiles if s))
        if not self.smiles:
            raise InputFileError(f"{name} holds no molecules")
        self.name = name
        self.sha256 = sha256_lines(sorted(self.smiles))
        self.cache_dir = resolve_cache_dir(cache_dir)
        self.workers = default_workers() if workers is None else max(1, workers)
        self._columns: np.ndarray | None = None  # uint64 [FP_BITS, words]: bank members per bit
        self._bit_freq: np.ndarray | None = None
        self._binaries: list[bytes | None] | None = None
        self._mols: list[Chem.Mol | None] | None = None
        self._exact: set[str] | None = None
        self.n_invalid = 0
        self.build_info: dict[str, float | bool] = {}  # how the index was obtained: time, CPU, cache

    @classmethod
    def from_file(cls, path: str | os.PathLike, *, what: str = "bank", **kwargs) -> Bank:
        """A bank from a SMILES file (read with `read_smiles`: canonical, invalid lines counted)."""
        from molleak.data.smiles_io import read_smiles

        mols = read_smiles(path, what=what)
        return cls(mols.smiles, name=str(path), **kwargs)

    def __len__(self) -> int:
        return len(self.smiles)

    # -----------------------------------------------------------------------------------------
    # index

    def _cache_file(self) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / "banks" / f"{self.sha256}.v{INDEX_VERSION}.npz"

    def build(self) -> Bank:
        """Build (or load from the disk cache) the fingerprint index, molecules and exact keys."""
        if self._columns is not None:
            return self
        t0, cpu0 = time.perf_counter(), time.process_time()
        path = self._cache_file()
        if path is not None and path.is_file():
            try:
                self._load(path)
                self.build_info = {"from_cache": True, "seconds": time.perf_counter() - t0,
                                   "cpu_seconds": time.process_time() - cpu0}
                log.info("loaded the index of %s (%d molecules) from %s", self.name, len(self), path)
                return self
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
                # truncated or corrupt: a cache miss; the index is rebuilt and rewritten atomically below
                log.warning("ignoring unreadable bank cache %s (%s); rebuilding it", path, exc)
        n = len(self.smiles)
        chunk = max(500, n // (self.workers * 8) + 1)
        parts_in = [self.smiles[i : i + chunk] for i in range(0, n, chunk)]
        if self.workers > 1 and len(parts_in) > 1:
            with mp.get_context("fork").Pool(self.workers) as pool:
                parts = pool.map(_index_chunk, parts_in)
        else:
            parts = [_index_chunk(p) for p in parts_in]
        bits = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, FP_BITS // 8), np.uint8)
        binaries = [b for p in parts for b in p[1]]
        keys = [k for p in parts for k in p[2]]
        self._set_index(bits, binaries, keys)
        if path is not None:
            self._save(path, bits, binaries, keys)
        worker_cpu = sum(p[3] for p in parts) if self.workers > 1 and len(parts_in) > 1 else 0.0
        self.build_info = {"from_cache": False, "seconds": time.perf_counter() - t0,
                           "cpu_seconds": worker_cpu + time.process_time() - cpu0}
        return self

    def _set_index(self, rows: np.ndarray, binaries: list[bytes | None], keys: list[str | None]) -> None:
        """Index from row-packed fingerprints (uint8 [n, FP_BITS / 8], big-endian bits as np.packbits)."""
        self.n_invalid = sum(b is None for b in binaries)
        if self.n_invalid:
            log.warning("%s: %d SMILES do not parse and can match nothing", self.name, self.n_invalid)
        n = rows.shape[0]
        words = (n + 63) // 64
        columns = np.zeros((FP_BITS, words * 8), dtype=np.uint8)
        # Column b holds bank molecule k at bit (k % 64) of word k // 64 (little-endian bit order).
        # Transposed in blocks so a large bank never needs an unpacked [n, FP_BITS] matrix at once.
        block = _TRANSPOSE_BLOCK
        for start in range(0, n, block):
            dense = np.unpackbits(rows[start : start + block], axis=1)[:, :FP_BITS].astype(bool)
            packed = np.packbits(dense.T, axis=1, bitorder="little")
            columns[:, start // 8 : start // 8 + packed.shape[1]] = packed
        self._columns = columns.view(np.uint64)
        self._bit_freq = np.bitwise_count(self._columns).sum(axis=1, dtype=np.int64)
        self._binaries = binaries
        self._mols = [None] * n
        self._exact = {k for k in keys if k is not None}

    def _save(self, path: Path, bits: np.ndarray, binaries: list[bytes | None], keys: list[str | None]) -> None:
        import io

        from molleak.runs import write_atomic

        lengths = np.array([len(b) if b is not None else -1 for b in binaries], dtype=np.int64)
        blob = np.frombuffer(b"".join(b for b in binaries if b is not None), dtype=np.uint8)
        buf = io.BytesIO()
        np.savez(buf, bits=bits, lengths=lengths, blob=blob,
                 keys=np.array(["" if k is None else k for k in keys]),
                 smiles_sha256=np.array(self.sha256))
        try:
            write_atomic(path, buf.getvalue())
        except OSError as exc:  # a read-only cache is not an error: the index is just rebuilt next time
            log.warning("could not cache the bank index at %s (%s)", path, exc)

    def _load(self, path: Path) -> None:
        with np.load(path, allow_pickle=False) as data:
            if str(data["smiles_sha256"]) != self.sha256:
                raise ValueError("sha256 mismatch")
            bits = data["bits"]
            lengths = data["lengths"]
            blob = data["blob"].tobytes()
            keys = [k or None for k in data["keys"].tolist()]
        if bits.shape[0] != len(self.smiles):
            raise ValueError("size mismatch")
        binaries: list[bytes | None] = []
        pos = 0
        for length in lengths.tolist():
            if length < 0:
                binaries.append(None)
            else:
                binaries.append(blob[pos : pos + length])
                pos += length
        self._set_index(bits, binaries, keys)

    # -----------------------------------------------------------------------------------------
    # queries

    def mol(self, k: int) -> Chem.Mol | None:
        """Bank molecule k (decoded on first use; kept only for banks up to MAX_DECODED molecules)."""
        assert self._mols is not None and self._binaries is not None
        m = self._mols[k]
        if m is None and self._binaries[k] is not None:
            m = Chem.Mol(self._binaries[k])
            if len(self._mols) <= MAX_DECODED:
                self._mols[k] = m
        return m

    def decode_all(self) -> None:
        """Decode every bank molecule now (before forking workers, so they share the decoded ones).

        Does nothing for banks over MAX_DECODED molecules, whose decoded molecules would not fit in
        memory (such banks decode each screened molecule when it is confirmed).
        """
        self.build()
        if len(self.smiles) > MAX_DECODED:
            return
        for k in range(len(self.smiles)):
            self.mol(k)

    def has_exact(self, key: str) -> bool:
        """Whether a molecule with this `exact_key` is in the bank."""
        self.build()
        assert self._exact is not None
        return key in self._exact

    def screen(self, query_bits: np.ndarray) -> np.ndarray:
        """Indices of bank molecules whose pattern fingerprint holds every bit of `query_bits`.

        Args:
            query_bits: boolean [FP_BITS] fingerprint of the candidate.
        """
        self.build()
        cols, freq = self._columns, self._bit_freq
        assert cols is not None and freq is not None
        on = np.flatnonzero(query_bits)
        if on.size == 0:
            return np.arange(len(self.smiles))
        on = on[np.argsort(freq[on], kind="stable")]  # rarest bits first: empty sets show up early
        if freq[on[0]] == 0:
            return np.zeros(0, dtype=np.int64)
        acc = np.bitwise_and.reduce(cols[on[:8]], axis=0)
        words = np.flatnonzero(acc)
        if words.size and on.size > 8:
            sub = np.bitwise_and.reduce(cols[np.ix_(on[8:], words)], axis=0) & acc[words]
            keep = sub != 0
            words, acc_words = words[keep], sub[keep]
        else:
            acc_words = acc[words]
        if words.size == 0:
            return np.zeros(0, dtype=np.int64)
        bits = np.unpackbits(acc_words.view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")
        w, b = np.nonzero(bits.reshape(words.size, 64))
        return words[w] * 64 + b
