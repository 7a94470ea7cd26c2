"""Linear probes on frozen victim embeddings: does pre-training beat the same encoder at random init?

For every victim checkpoint in a zoo directory (`<name>.pt` for the names in `molleak.victims.zoo.ZOO_VICTIMS`),
and for the same encoder (same architecture and config) at random initialisation, `run_probes` fits

* ridge regression of RDKit targets (`RDKIT_TARGETS`: Crippen logP, TPSA, QED, ring count, fraction
  sp3, Bertz complexity) on the tier's holdout molecules (never pre-trained on), scored by R^2,
* logistic regression of B3DB's BBB+/BBB- class (a random subset), scored by ROC-AUC, and
* ridge regression of two more measured properties from other sources (`freesolv`, `solubility`;
  `molleak.data.properties`),

either by 5-fold cross-validation on all molecules (regime None) or trained on N labelled molecules
over `repeats` random splits (the low-label regime). Embeddings are standardised inside each fold,
and each probe's regularisation strength is chosen inside its training fold (RidgeCV;
LogisticRegressionCV with 3 inner folds), so no representation is judged at a strength tuned for
another. The random-initialisation baseline is drawn with `random_seeds` different seeds; a victim
"beats random init" on a probe when its score is above the best of those draws. `probe_tables`
formats the result as two Markdown tables.

Note: the regression victim was fine-tuned on B3DB logBB, whose molecules overlap B3DB's
classification set, so its BBB column is not a held-out property.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from molleak.errors import InputFileError, MolleakError

log = logging.getLogger(__name__)


def _rdkit_targets() -> dict[str, Any]:
    from rdkit.Chem import QED, Crippen, Descriptors

    return {
        "logp": Crippen.MolLogP,
        "tpsa": Descriptors.TPSA,
        "qed": QED.qed,
        "rings": Descriptors.RingCount,
        "fsp3": Descriptors.FractionCSP3,
        "bertz": Descriptors.BertzCT,
    }


#: RDKit targets on holdout molecules (none is a pre-training label of any strategy)
RDKIT_TARGETS = ("logp", "tpsa", "qed", "rings", "fsp3", "bertz")


def measured_set(name: str, n: int, seed: int) -> tuple[list[str], np.ndarray, bool]:
    """A seeded random subset of at most n molecules of a measured property set."""
    from molleak.data.properties import load_property_set

    prop = load_property_set(name)
    if prop.n_invalid or prop.n_duplicate:
        log.info("%s: %d rows without a valid molecule or value and %d repeated molecules left out of %d", name,
                 prop.n_invalid, prop.n_duplicate, len(prop.smiles) + prop.n_invalid + prop.n_duplicate)
    idx = np.random.default_rng(seed).permutation(len(prop.smiles))[:n]
    y = prop.values[idx].astype(int) if prop.classify else prop.values[idx]
    return [prop.smiles[i] for i in idx], y, prop.classify


def probe_score(emb: np.ndarray, y: np.ndarray, classify: bool, n_train: int | None, seed: int,
                repeats: int) -> list[float]:
    """Per-split R^2 (ridge) or ROC-AUC (logistic) of a linear probe on standardised embeddings.

    The splits depend only on `seed` and the labels, so every representation is scored on the same
    splits and two representations can be compared split by split.

    n_train None: 5-fold CV on everything. n_train = N: `repeats` random splits, the probe trained on
    N labelled molecules and scored on all the others (the low-label regime pre-training is for).
    """
    from sklearn.linear_model import LogisticRegressionCV, RidgeCV
    from sklearn.model_selection import (
        KFold,
        ShuffleSplit,
        StratifiedKFold,
        StratifiedShuffleSplit,
        cross_val_score,
    )
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if classify:
        model = make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=np.logspace(-4, 2, 7), cv=3, scoring="roc_auc",
                                                                     max_iter=5000))
        scoring = "roc_auc"
    else:
        model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 5, 15)))
        scoring = "r2"
    if n_train is None:
        cv = (StratifiedKFold if classify else KFold)(5, shuffle=True, random_state=seed)
    else:
        cv = (StratifiedShuffleSplit if classify else ShuffleSplit)(repeats, train_size=n_train, random_state=seed)
    with warnings.catch_warnings():
        # scikit-learn 1.8 announces a change of LogisticRegressionCV's fitted attributes, which we never read
        warnings.filterwarnings("ignore", category=FutureWarning, module="sklearn")
        return [float(v) for v in cross_val_score(model, emb, y, cv=cv, scoring=scoring)]


def check_targets(targets: list[str]) -> None:
    from molleak.data.properties import PROPERTY_SETS

    if not targets:
        raise MolleakError("no probe targets given")
    unknown = [t for t in targets if t not in PROPERTY_SETS and t not in RDKIT_TARGETS]
    if unknown:
        raise MolleakError(f"unknown probe target(s) {', '.join(unknown)}; choose from "
                           f"{', '.join([*PROPERTY_SETS, *RDKIT_TARGETS])}")


def label(target: str, n_train: int | None) -> str:
    """A probe column's name: `target` (5-fold CV on all) or `target@N` (N labelled molecules)."""
    return target if n_train is None else f"{target}@{n_train}"


def run_probes(
    zoo_dir: str | Path,
    data_dir: str | Path,
    *,
    targets: list[str],
    regimes: list[int | None],
    n_measured: int = 2000,
    n_rdkit: int = 2000,
    repeats: int = 10,
    random_seeds: int = 3,
    seed: int = 0,
) -> dict[str, Any]:
    """Probe every zoo victim and the same encoder at `random_seeds` random initialisations.

    Returns:
        {"sets": {target: n molecules}, "columns": [probe names], "repeats", "random_seeds", "seed",
         "rows": [{"victim", "encoder", "config", "trained": {col: mean}, "trained_splits": {col: [..]},
                   "random": {col: [mean per draw]}, "random_splits": {col: [[..] per draw]}}]}
    """
    from rdkit import Chem

    from molleak.chem import rdkit_quiet
    from molleak.data.properties import PROPERTY_SETS
    from molleak.data.smiles_io import read_smiles
    from molleak.models.base import build_encoder
    from molleak.models.checkpoint import read_checkpoint_file
    from molleak.models.victim import Victim
    from molleak.victims.zoo import ZOO_VICTIMS

    check_targets(targets)
    zoo = Path(zoo_dir)
    names = [n for n in ZOO_VICTIMS if (zoo / f"{n}.pt").is_file()]
    if not names:
        raise InputFileError(f"{zoo}: no victim checkpoint (expected <name>.pt for a name in "
                             f"{', '.join(ZOO_VICTIMS)})")
    sets: dict[str, tuple[list[str], np.ndarray, bool]] = {}
    rdkit_targets = [t for t in targets if t in RDKIT_TARGETS]
    if rdkit_targets:
        path = Path(data_dir) / "holdout.smi"
        if not path.is_file():
            raise InputFileError(f"{path} not found (the RDKit targets are probed on the tier's holdout set)")
        smiles = read_smiles(path).smiles
        if len(smiles) > n_rdkit:
            pick = np.sort(np.random.default_rng(seed).permutation(len(smiles))[:n_rdkit])
            smiles = [smiles[i] for i in pick]
        with rdkit_quiet():
            mols = [Chem.MolFromSmiles(s) for s in smiles]
        fns = _rdkit_targets()
        for t in rdkit_targets:
            sets[t] = (smiles, np.array([float(fns[t](m)) for m in mols]), False)
    for t in (t for t in targets if t in PROPERTY_SETS):
        sets[t] = measured_set(t, n_measured, seed)

    columns = [(t, n) for n in regimes for t in sets]

    def scores_of(victim: Victim) -> dict[str, list[float]]:
        # the victim caches by molecule: each is embedded once for every regime
        return {label(t, n): probe_score(victim.embed(sets[t][0]), sets[t][1], sets[t][2], n, seed, repeats)
                for t, n in columns}

    rows = []
    random_cache: dict[str, dict[str, list[list[float]]]] = {}  # one architecture's victims share random inits
    for name in names:
        path = zoo / f"{name}.pt"
        trained = Victim.from_checkpoint(path)
        spec = read_checkpoint_file(path)["encoder"]
        key = json.dumps([spec["name"], spec["config"]], sort_keys=True)
        if key not in random_cache:
            random_cache[key] = {label(*c): [] for c in columns}
            for k in range(random_seeds):
                torch.manual_seed(seed + k)
                random_init = Victim(build_encoder(spec["name"], spec["config"]), name=f"{name}-random{k}")
                for t, v in scores_of(random_init).items():
                    random_cache[key][t].append(v)
        splits = scores_of(trained)
        log.info("probed %s", name)
        rows.append({"victim": name, "encoder": spec["name"], "config": spec["config"],
                     "trained": {c: float(np.mean(v)) for c, v in splits.items()}, "trained_splits": splits,
                     "random": {c: [float(np.mean(v)) for v in draws] for c, draws in random_cache[key].items()},
                     "random_splits": random_cache[key]})
    return {"sets": {t: len(s[0]) for t, s in sets.items()}, "columns": [label(*c) for c in columns],
            "repeats": repeats, "random_seeds": random_seeds, "seed": seed, "rows": rows}


def probe_tables(res: dict[str, Any]) -> list[str]:
    """Two Markdown tables: trained vs random init per probe, then the probes won with their splits won."""
    names = res["columns"]
    lines = [f"probes: {', '.join(f'{t} ({n} molecules)' for t, n in res['sets'].items())}; `target` = 5-fold CV on "
             f"all, `target@N` = trained on N labelled molecules, {res['repeats']} random splits; seed {res['seed']}; "
             f"random init: {res['random_seeds']} seeds (mean ± sd); bold = above every random-init draw; "
             "ROC-AUC for bbb, R² for the others",
             "| victim | " + " | ".join(f"{c} trained | {c} random init" for c in names) + " | wins |",
             "|---|" + "---|---|" * len(names) + "---|"]
    for r in res["rows"]:
        cells, wins = [], 0
        for c in names:
            rnd = np.asarray(r["random"][c])
            win = r["trained"][c] > rnd.max()
            wins += int(win)
            val = f"{r['trained'][c]:.3f}"
            sd = rnd.std(ddof=1) if len(rnd) > 1 else 0.0
            cells += [f"**{val}**" if win else val, f"{rnd.mean():.3f} ± {sd:.3f}"]
        lines.append(f"| {r['victim']} | " + " | ".join(cells) + f" | {wins}/{len(names)} |")
    # Split by split against the best random draw: a win in every split is not a lucky mean.
    lines += ["", "probes won (mean above every random-init draw), each with the splits on which the victim also "
                  "beats that probe's best draw (same splits)",
              "| victim | probes won | won probes: splits won |", "|---|---|---|"]
    for r in res["rows"]:
        won = []
        for c in names:
            best = int(np.argmax(r["random"][c]))
            if r["trained"][c] > r["random"][c][best]:
                ours, theirs = np.asarray(r["trained_splits"][c]), np.asarray(r["random_splits"][c][best])
                won.append(f"{c} {int((ours > theirs).sum())}/{len(ours)}")
        lines.append(f"| {r['victim']} | {len(won)}/{len(names)} | {', '.join(won) or '-'} |")
    return lines
