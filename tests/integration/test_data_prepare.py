import json

from molleak.data.smiles_io import read_smiles
from molleak.data.splits import SPLIT_FILES, prepare_tier
from molleak.runs import sha256_file


def test_tiny_tier_files_counts_disjoint(tiny_tier):
    for name in SPLIT_FILES:
        assert (tiny_tier / name).is_file(), name
    manifest = json.loads((tiny_tier / "manifest.json").read_text())
    sets = {}
    for name, entry in manifest["files"].items():
        smi = read_smiles(tiny_tier / name, canonicalize=True).smiles  # re-canonicalise: files must be canonical
        assert len(smi) == entry["count"], name
        sets[name] = set(smi)
    assert (len(sets["private.smi"]), len(sets["aux.smi"]), len(sets["holdout.smi"])) == (2000, 500, 500)
    assert len(sets["reference.smi"]) == 2000 and len(sets["aux_shifted.smi"]) == 500
    assert len(sets["aux_external.smi"]) > 10_000
    names = list(sets)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not sets[a] & sets[b], f"{a} and {b} overlap"
    assert manifest["seed"] == 0 and manifest["tier"] == "tiny"
    assert all(len(v["sha256"]) == 64 for v in manifest["sources"].values())
    assert "invalid" in manifest["dropped"]["moses/train"]


def test_same_seed_same_files(tiny_tier, tmp_path):
    prepare_tier("tiny", 0, tmp_path)
    for name in ("private.smi", "aux.smi", "holdout.smi", "reference.smi", "aux_shifted.smi", "aux_external.smi"):
        assert sha256_file(tmp_path / name) == sha256_file(tiny_tier / name), name
