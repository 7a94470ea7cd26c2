import pytest

from molleak.data.smiles_io import read_smiles, write_smiles
from molleak.errors import InputFileError


def test_invalid_and_duplicate_lines_are_counted(tmp_path):
    p = tmp_path / "in.smi"
    p.write_text("smiles\nCCO id1\nnot_a_smiles\nOCC\nc1ccccc1\n\n# comment\nC1CC\n")
    s = read_smiles(p)
    assert s.smiles == ["CCO", "c1ccccc1"]
    assert (s.n_lines, s.n_invalid, s.n_duplicate) == (5, 2, 1)
    assert s.invalid_examples[0] == (3, "not_a_smiles")


def test_missing_empty_and_all_invalid(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        read_smiles(tmp_path / "nope.smi", what="private set")
    (tmp_path / "empty.smi").write_text("\n\n")
    with pytest.raises(InputFileError, match="empty"):
        read_smiles(tmp_path / "empty.smi")
    (tmp_path / "bad.smi").write_text("xx\nyy\n")
    with pytest.raises(InputFileError, match="no valid SMILES"):
        read_smiles(tmp_path / "bad.smi")


def test_roundtrip(tmp_path):
    write_smiles(tmp_path / "o.smi", ["CCO", "CCN"])
    assert read_smiles(tmp_path / "o.smi").smiles == ["CCO", "CCN"]


def test_a_cached_reading_equals_a_fresh_one_and_a_damaged_cache_is_recomputed(tmp_path, monkeypatch, caplog):
    import logging

    from molleak.data.smiles_io import read_smiles

    monkeypatch.setenv("MOLLEAK_CACHE_DIR", str(tmp_path / "cache"))
    f = tmp_path / "set.smi"
    f.write_text("OCC\nCCO\nnot_a_smiles\nc1ccccc1\n")
    first = read_smiles(f)
    cached = list((tmp_path / "cache" / "smiles").glob("*.json"))
    assert len(cached) == 1
    again = read_smiles(f)  # from the cache: same molecules, counts and examples
    assert again == first and (first.n_invalid, first.n_duplicate) == (1, 1)
    cached[0].write_text("{truncated")
    with caplog.at_level(logging.WARNING):
        third = read_smiles(f)
    assert third == first and "ignoring the unreadable cache" in caplog.text
    f.write_text("CCN\n")  # other bytes: another entry, never the old reading
    assert read_smiles(f).smiles == ["CCN"]
