"""The canary control's draws and its extraction measurement (used by `molleak.plans.leakage.run_canary`).

- `draw_canary_sets`: three disjoint random draws of equal size from one source: the **canaries**
  (planted r times in the victim), the **non-members** (planted nowhere: the negatives of the
  membership test and, as the "decoys", of the extraction test) and the **reference's canaries**
  (planted r times in the reference victim, so that it trains on as many molecules with the same
  repetition structure without seeing any molecule the tests score). The reference victim never
  sees a canary, a non-member or a decoy, so its statistics on them are a null.
- `canary_extraction`: the extraction attack through the victim and through the reference victim,
  and where the canaries and the unplanted decoys land in each ranking.
- `full_ranks`: every molecule's rank, molecules a method could not score (NaN) last, counted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from molleak.errors import MolleakError
from molleak.evaluate.metrics import auc_p_value
from molleak.ranking import rank_order

#: what a canary cell's results mean; bumped when the protocol changes, so old cells are recomputed
#: (2: the reference victim plants molecules of its own instead of the decoys; p-values recorded)
CANARY_PROTOCOL = 2


def draw_canary_sets(source: list[str], n: int, rng: np.random.Generator, what: str) -> dict[str, list[str]]:
    """Canaries, non-members and the reference's canaries: disjoint random draws of `n` from `source`."""
    if len(source) < 3 * n:
        raise MolleakError(f"{what} has {len(source)} molecules; {3 * n} needed for {n} canaries, "
                           f"{n} non-members and {n} molecules planted in the reference victim")
    drawn = [source[i] for i in rng.permutation(len(source))[: 3 * n]]
    return {"canaries": drawn[:n], "nonmembers": drawn[n : 2 * n], "reference_canaries": drawn[2 * n :]}


def full_ranks(scores: np.ndarray, seed: int) -> np.ndarray:
    """1-based rank of every molecule, best first; molecules the method did not score (NaN) share the
    last places in a seeded random order. (`rank_order` ranks finite scores only: mapping NaN to -inf
    left those molecules without a rank.)"""
    scores = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(scores)
    order = rank_order(scores, seed)
    rest = np.flatnonzero(~finite)
    rest = rest[np.random.default_rng([seed, 1]).permutation(len(rest))]
    rank = np.empty(len(scores), dtype=np.int64)
    rank[np.concatenate([order, rest]).astype(np.int64)] = np.arange(1, len(scores) + 1)
    return rank


def _unscored_last(scores: np.ndarray) -> np.ndarray:
    """Scores with every non-finite one (not scored) tied below the lowest finite score: counted, last."""
    scores = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(scores)
    floor = float(scores[finite].min()) - 1.0 if finite.any() else 0.0
    return np.where(finite, scores, floor)


def canary_extraction(
    victim: Any,
    reference: Any,
    records: list,
    aux_smiles: list[str],
    canaries: list[str],
    decoys: list[str],
    *,
    attack: str = "adapter",
    attack_options: dict[str, Any] | None = None,
    work_dir: str | Path | None = None,
    seed: int = 0,
    n_boot: int = 1000,
    k_list: tuple[int, ...] = (50, 100, 200),
) -> dict[str, Any]:
    """Does the extraction attack recover planted canaries? The same attack through victim and reference.

    The victim was trained with the canaries planted; the decoys are unplanted molecules of the same
    pool (in neither model's training set); the reference victim saw neither. Reported per model: the
    canaries' and decoys' ranks among the pool's molecules, their mean exposure (log2 of pool size over
    rank; 0 = ranked last, log2(e) = 1.44 at chance, log2(N) = ranked first), how many sit in the top-K.

    Then the tests, victim-only first: `victim_only` is the AUC of the victim's score for canary vs
    decoy with the one-sided Mann-Whitney p (valid alone: canaries and decoys are random draws of one
    pool); `canary_vs_decoy` is the reference contrast, the paired-bootstrap difference of that AUC
    between victim and reference victim. Molecules the attack left unscored (NaN) are ranked last and
    counted in both (tied below every scored molecule), never dropped.
    """
    from molleak.attack import methods
    from molleak.attack.context import AttackContext
    from molleak.evaluate.attribution import auc_estimate, private_only_difference

    overlap = set(canaries) & set(decoys)
    if overlap:
        raise MolleakError(f"canary extraction: {len(overlap)} molecules are both canaries and decoys")
    ctx = AttackContext(aux_smiles=aux_smiles, seed=seed, records=records, victim=victim, work_dir=work_dir)
    outputs = {"victim": methods.run_method(ctx, attack, attack_options)}
    # the same pool, weak labels and work directory (a shadow encoder depends on the recipe only)
    outputs["reference"] = methods.run_method(ctx.for_victim(reference), attack, attack_options)
    smiles = outputs["victim"].smiles
    if outputs["reference"].smiles != smiles:
        raise MolleakError("canary extraction: the two runs scored different molecules")
    n = len(smiles)
    is_canary = np.isin(smiles, canaries)
    is_decoy = np.isin(smiles, decoys)
    result: dict[str, Any] = {"attack": attack, "attack_options": dict(attack_options or {}), "pool_molecules": n,
                              "n_canaries": int(is_canary.sum()), "n_decoys": int(is_decoy.sum())}
    for role, output in outputs.items():
        rank = full_ranks(output.scores, seed)
        row: dict[str, Any] = {"unscored": int((~np.isfinite(np.asarray(output.scores, float))).sum())}
        for group, mask in (("canaries", is_canary), ("decoys", is_decoy)):
            ranks = rank[mask]
            row[group] = {"median_rank": float(np.median(ranks)),
                          "mean_exposure": float(np.mean(np.log2(n / ranks))),
                          "unscored": int((~np.isfinite(np.asarray(output.scores, float)[mask])).sum()),
                          **{f"in_top{k}": int(np.sum(ranks <= k)) for k in k_list}}
        result[role] = row
    sv, sr = _unscored_last(outputs["victim"].scores), _unscored_last(outputs["reference"].scores)
    keep = is_canary | is_decoy
    result["victim_only"] = {"auc": auc_estimate(sv[keep], is_canary[keep], n_boot=n_boot, seed=seed),
                             "p_value": auc_p_value(sv[is_canary], sv[is_decoy]),
                             "n_canaries": int(is_canary.sum()), "n_decoys": int(is_decoy.sum())}
    result["canary_vs_decoy"] = private_only_difference(sv, sr, is_canary, is_decoy, n_boot=n_boot, seed=seed)
    return result
