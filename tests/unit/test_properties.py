"""Measured property sets read offline from installed packages (probe targets)."""

from __future__ import annotations

import numpy as np
import pytest

from molleak.chem import canonical_smiles
from molleak.data.properties import PROPERTY_SETS, load_property_set
from molleak.errors import InputFileError


@pytest.mark.parametrize("name", list(PROPERTY_SETS))
def test_each_property_set_loads_canonical_unique_molecules_with_finite_values(name):
    prop = load_property_set(name)
    assert len(prop.smiles) == len(prop.values) > 500
    assert len(set(prop.smiles)) == len(prop.smiles)
    assert all(canonical_smiles(s) == s for s in prop.smiles[:50])
    assert np.isfinite(prop.values).all()
    assert prop.classify is PROPERTY_SETS[name][1]


def test_property_values_are_the_published_ones():
    bbb = load_property_set("bbb")
    assert set(np.unique(bbb.values)) == {0.0, 1.0} and 0.5 < bbb.values.mean() < 0.75
    freesolv = load_property_set("freesolv")
    # FreeSolv's first row: 4-methoxy-N,N-dimethyl-benzamide, -11.01 kcal/mol
    assert freesolv.values[freesolv.smiles.index(canonical_smiles("CN(C)C(=O)c1ccc(cc1)OC"))] == pytest.approx(-11.01)
    sol = load_property_set("solubility")
    assert sol.values[sol.smiles.index("CCCCC")] == pytest.approx(-3.18)  # n-pentane, the train file's first record
    assert sol.n_duplicate > 0  # molecules in both the train and test files are kept once


def test_unknown_property_set_is_a_clear_error():
    with pytest.raises(InputFileError, match="unknown property set 'logd'"):
        load_property_set("logd")
