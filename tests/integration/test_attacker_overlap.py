"""An attacker set that overlaps a victim's training union is refused; the bench's own tier no longer overlaps.

The premise, measured on the installed data: the tier's `aux_external.smi` draws on B3DB, which holds
most of the logBB set the zoo's regression victim is fine-tuned on. Every count below is recomputed
here from the files, not copied from a run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from molleak.data.smiles_io import read_smiles, write_smiles
from molleak.errors import MolleakError
from molleak.pretrain.regression import load_b3db_logbb
from molleak.runs import sha256_file, sha256_lines
from molleak.victims.overlap import check_attacker_pairs, check_attacker_sets
from molleak.victims.zoo import remove_finetuning_set


def _tier_copy(tiny_tier: Path, out: Path) -> Path:
    out.mkdir(parents=True)
    for name in ("private.smi", "aux.smi", "aux_external.smi", "manifest.json"):
        shutil.copy(tiny_tier / name, out / name)
    return out


def _fine_tuned_victim(data: Path, out: Path) -> Path:
    """A checkpoint whose provenance lists a pre-training set (the tier's private.smi) and a
    fine-tuning set (B3DB logBB, written beside it), as the zoo's regression victim's does."""
    from molleak.models.base import build_encoder
    from molleak.models.checkpoint import save_checkpoint

    out.mkdir(parents=True)
    ft = load_b3db_logbb()[0]
    write_smiles(out / "regression.finetune.smi", ft)
    private = read_smiles(data / "private.smi", canonicalize=False).smiles
    training_sets = [{"role": "pretraining", "file": str(data / "private.smi"), "sha256": sha256_lines(private)},
                     {"role": "finetuning", "file": "regression.finetune.smi", "sha256": sha256_lines(ft)}]
    path = out / "regression.pt"
    save_checkpoint(path, build_encoder("gin", {"num_layers": 1, "emb_dim": 8}), {"training_sets": training_sets})
    return path


def test_an_aux_set_holding_the_fine_tuning_molecules_is_refused_until_they_are_removed(tiny_tier, tmp_path):
    data = _tier_copy(tiny_tier, tmp_path / "data")
    victim = _fine_tuned_victim(data, tmp_path / "zoo")
    ext = data / "aux_external.smi"
    external = read_smiles(ext, canonicalize=False).smiles
    expected = len(set(load_b3db_logbb()[0]) & set(external))
    assert expected > 0  # the premise of the check: B3DB feeds aux_external

    with pytest.raises(MolleakError) as err:
        check_attacker_sets(victim, [data / "aux.smi", ext], search_dirs=(data,))
    message = str(err.value)
    assert "\n" not in message
    assert f"attacker's set {ext} shares {expected} of its {len(external)} molecules" in message
    assert f"({expected} in {tmp_path / 'zoo' / 'regression.finetune.smi'})" in message  # the victim's file
    assert str(victim) in message
    check_attacker_sets(victim, [data / "aux.smi"], search_dirs=(data,))  # the in-distribution aux set is disjoint

    assert remove_finetuning_set(data) == {"aux_external.smi": expected}
    kept = read_smiles(ext, canonicalize=False).smiles
    assert len(kept) == len(external) - expected and not set(kept) & set(load_b3db_logbb()[0])
    manifest = json.loads((data / "manifest.json").read_text())
    assert manifest["files"]["aux_external.smi"] == {"count": len(kept), "sha256": sha256_file(ext)}
    assert manifest["removed_finetuning_molecules"] == {"aux_external.smi": expected}
    check_attacker_sets(victim, [data / "aux.smi", ext], search_dirs=(data,))  # now accepted
    assert remove_finetuning_set(data) == {"aux_external.smi": 0}  # a second call changes nothing


def test_molecules_are_compared_as_canonical_smiles(tiny_tier, tmp_path):
    from rdkit import Chem

    data = _tier_copy(tiny_tier, tmp_path / "data")
    victim = _fine_tuned_victim(data, tmp_path / "zoo")
    private = read_smiles(data / "private.smi", canonicalize=False).smiles
    other = Chem.MolToSmiles(Chem.MolFromSmiles(private[5]), canonical=False, doRandom=True)
    if other == private[5]:
        other = Chem.MolToSmiles(Chem.MolFromSmiles(private[5]), rootedAtAtom=1, canonical=False)
    assert other != private[5]
    unseen = read_smiles(tiny_tier / "holdout.smi", canonicalize=False).smiles[0]  # in neither training set
    assert unseen not in set(private) | set(load_b3db_logbb()[0])
    attacker = tmp_path / "mine.smi"  # not a tier file: canonicalised before comparing
    attacker.write_text(f"{other}\n{unseen}\n")
    with pytest.raises(MolleakError, match=rf"shares 1 of its 2 molecules .*\(1 in {data / 'private.smi'}\)"):
        check_attacker_pairs([(victim, attacker), (tmp_path / "absent.pt", attacker)], search_dirs=(data,))


def test_a_training_file_that_changed_is_refused(tiny_tier, tmp_path):
    data = _tier_copy(tiny_tier, tmp_path / "data")
    victim = _fine_tuned_victim(data, tmp_path / "zoo")
    (tmp_path / "zoo" / "regression.finetune.smi").write_text("CCO\n")
    with pytest.raises(MolleakError, match="no longer matches the finetuning set"):
        check_attacker_sets(victim, [data / "aux.smi"], search_dirs=(data,))


def test_the_bench_prepares_its_tier_without_the_fine_tuning_molecules(tiny_tier, tmp_path):
    from molleak.plans.bench.runner import BenchPaths, prepare_data
    from molleak.plans.bench.suites import BenchConfig

    bench = tmp_path / "bench"
    _tier_copy(tiny_tier, bench / "data")  # as a bench that prepared its tier earlier left it
    config = BenchConfig()
    prepare_data(BenchPaths(bench, config), config)
    kept = set(read_smiles(bench / "data" / "aux_external.smi", canonicalize=False).smiles)
    assert kept and not kept & set(load_b3db_logbb()[0])
