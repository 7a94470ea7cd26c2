"""The owner's control models, built by the one victim builder (`molleak.victims.build`).

- `train_victim`: the owner's victim, a recipe on a training list;
- `build_reference_victim`: the victim's recipe and seed on the disjoint reference set (same initial
  weights, other data: the leakage control);
- `build_regression_reference`: for the fine-tuned regression victim, its fine-tune applied to its
  base strategy's reference victim;
- `build_untrained`: the victim's encoder at its seeded random initialisation;
- `plant_canaries`: the positive control's training list (refusing one that holds a molecule the
  control's tests score as unseen);
- `write_training_list`: a training list as the file a checkpoint's provenance names.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from molleak.errors import MolleakError
from molleak.pretrain.trainer import PretrainConfig
from molleak.rundir import Role
from molleak.runs import sha256_lines, write_atomic
from molleak.victims.build import ensure_victim, recipe_of


def train_victim(
    smiles: list[str], config: PretrainConfig, out: str | Path, *, train_name: str = "",
    extra_provenance: dict[str, Any] | None = None, progress: bool = False,
) -> Path:
    """The owner's victim: `config` on `smiles` (built, or reused by `ensure_victim`'s rule)."""
    return ensure_victim(Role.VICTIM, config, smiles, None, out, train_name=train_name,
                         extra_provenance=extra_provenance, progress=progress).path


def build_reference_victim(
    victim_path: str | Path, reference_smiles: list[str], out: str | Path, *, train_name: str = "reference.smi"
) -> Path:
    """Train the victim's recipe (same config and seed) on the disjoint reference set.

    The same seed gives the same initial weights, so the pair differs only by the training data.
    This is the owner's control: the owner knows the victim's seed.
    """
    return ensure_victim(Role.REFERENCE, recipe_of(victim_path), reference_smiles, None, out, train_name=train_name,
                         extra_provenance={"reference_of": str(victim_path)}).path


def build_regression_reference(regression_path: str | Path, base_reference_path: str | Path,
                               out: str | Path) -> Path:
    """The fine-tuned (regression) victim's reference: its fine-tune recipe applied to its base
    strategy's reference victim, so the pair differs only by the pre-training data.

    The fine-tuning set is the victim's own (B3DB logBB, checked by sha256): both models saw it, so
    it is not what the reference is a control for.
    """
    from molleak.models.checkpoint import read_checkpoint_file
    from molleak.pretrain.regression import load_b3db_logbb

    regression_path, base_reference_path = Path(regression_path), Path(base_reference_path)
    prov = read_checkpoint_file(regression_path).get("provenance", {})
    if "finetune_sha256" not in prov or "config" not in prov:
        raise MolleakError(f"{regression_path} is not a fine-tuned zoo victim (no fine-tuning provenance)")
    config = PretrainConfig(**prov["config"])
    ft_smiles, ft_targets = load_b3db_logbb()
    if sha256_lines(ft_smiles) != prov["finetune_sha256"]:
        raise MolleakError(f"{regression_path} was fine-tuned on another logBB set than the installed qc-b3db's")
    base_prov = read_checkpoint_file(base_reference_path).get("provenance", {})
    pre = {"role": "pretraining", "file": base_prov.get("train_file", ""), "sha256": base_prov.get("train_sha256", ""),
           "n": base_prov.get("n_train")}
    finetune = next((s for s in prov.get("training_sets", []) if s.get("role") == "finetuning"), {})
    return ensure_victim(Role.REFERENCE, config, ft_smiles, None, out, train_name="finetune (logBB)",
                         init_from=base_reference_path, targets=ft_targets, extra_provenance={
                             "reference_of": str(regression_path), "finetune_sha256": prov["finetune_sha256"],
                             "training_sets": [pre, finetune]}).path


def build_untrained(victim_path_or_config: str | Path | PretrainConfig, out: str | Path) -> Path:
    """Save the victim's encoder at its seeded random initialisation as a checkpoint."""
    config = (victim_path_or_config if isinstance(victim_path_or_config, PretrainConfig)
              else recipe_of(victim_path_or_config, "an untrained control"))
    return ensure_victim(Role.UNTRAINED, config, None, None, out).path


def plant_canaries(private: list[str], canaries: list[str], repeats: int, *, unseen: Sequence[str] = ()) -> list[str]:
    """The training list: the private molecules plus each canary `repeats` times.

    `unseen`: molecules the control scores as never trained on (non-members, decoys); a training
    list holding one of them is refused (a reference victim trained on the decoys would rank them up
    and inflate every victim-minus-reference contrast).
    """
    if repeats < 1:
        raise MolleakError(f"canary repetition must be at least 1, got {repeats}")
    overlap = set(private) & set(canaries)
    if overlap:
        raise MolleakError(f"{len(overlap)} canaries are already in the private set")
    seen = (set(private) | set(canaries)) & set(unseen)
    if seen:
        raise MolleakError(f"{len(seen)} molecules the control scores as unseen (non-members or decoys) are in "
                           f"the training list, e.g. {sorted(seen)[0]}")
    return list(private) + list(canaries) * repeats


def write_training_list(smiles: Sequence[str], path: str | Path) -> Path:
    """Write a training list (one line per training example, repeats included) for a checkpoint's
    provenance to name: its lines hash to the provenance's `train_sha256`."""
    path = Path(path)
    write_atomic(path, "".join(f"{s}\n" for s in smiles))
    return path
