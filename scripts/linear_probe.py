"""Linear probes on frozen victim embeddings: does pre-training beat the same encoder at random init?

For every victim checkpoint in a zoo directory, and for the same encoder (same architecture and
config) at random initialisation, fits
  * ridge regression of RDKit targets (`--targets`: Crippen logP, TPSA, QED, ring count, fraction
    sp3, Bertz complexity) on the tier's holdout molecules (never pre-trained on), scored by R^2, and
  * logistic regression of B3DB's BBB+/BBB- class (a random subset), scored by ROC-AUC, and
  * ridge regression of two more measured properties from other sources (`freesolv`: FreeSolv
    hydration free energy; `solubility`: the RDKit book's log S set; `molleak.data.properties`),
either by 5-fold cross-validation on all molecules or, with `--n-train N`, trained on N labelled
molecules over `--repeats` random splits (the low-label regime). Embeddings are standardised inside
each fold, and each probe's regularisation strength is chosen inside its training fold (RidgeCV;
LogisticRegressionCV with 3 inner folds), so no representation is judged at a strength tuned for
another. The random-initialisation baseline is drawn with
`--random-seeds` different seeds (mean and standard deviation reported); a victim "beats random
init" on a probe when its score is above the best of those draws. Prints a Markdown table.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/linear_probe.py --zoo /tmp/zoo --data /tmp/tiny --seed 0

Note: the regression victim was fine-tuned on B3DB logBB, whose molecules overlap B3DB's
classification set, so its BBB column is not a held-out property.
"""

from __future__ import annotations

import argparse
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from rdkit import Chem
from rdkit.Chem import QED, Crippen, Descriptors
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

from molleak.chem import rdkit_quiet
from molleak.data.properties import PROPERTY_SETS, load_property_set
from molleak.data.smiles_io import read_smiles
from molleak.models.base import build_encoder
from molleak.models.checkpoint import read_checkpoint_file
from molleak.models.victim import Victim
from molleak.zoo import ZOO_VICTIMS


def measured_set(name: str, n: int, seed: int) -> tuple[list[str], np.ndarray, bool]:
    """A seeded random subset of at most n molecules of a measured property set."""
    prop = load_property_set(name)
    if prop.n_invalid or prop.n_duplicate:
        print(f"{name}: {prop.n_invalid} rows without a valid molecule or value and {prop.n_duplicate} repeated "
              f"molecules left out of {len(prop.smiles) + prop.n_invalid + prop.n_duplicate}")
    idx = np.random.default_rng(seed).permutation(len(prop.smiles))[:n]
    y = prop.values[idx].astype(int) if prop.classify else prop.values[idx]
    return [prop.smiles[i] for i in idx], y, prop.classify


#: RDKit targets on holdout molecules (none is a pre-training label of any strategy)
RDKIT_TARGETS = {
    "logp": Crippen.MolLogP,
    "tpsa": Descriptors.TPSA,
    "qed": QED.qed,
    "rings": Descriptors.RingCount,
    "fsp3": Descriptors.FractionCSP3,
    "bertz": Descriptors.BertzCT,
}


def probe_score(emb: np.ndarray, y: np.ndarray, classify: bool, n_train: int | None, seed: int,
                repeats: int) -> list[float]:
    """Per-split R^2 (ridge) or ROC-AUC (logistic) of a linear probe on standardised embeddings.

    The splits depend only on `seed` and the labels, so every representation is scored on the same
    splits and two representations can be compared split by split.

    n_train None: 5-fold CV on everything. n_train = N: `repeats` random splits, the probe trained on
    N labelled molecules and scored on all the others (the low-label regime pre-training is for).
    """
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
    return [float(v) for v in cross_val_score(model, emb, y, cv=cv, scoring=scoring)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zoo", required=True, help="directory with <strategy>.pt victims")
    ap.add_argument("--data", required=True, help="tier directory (its holdout.smi is the RDKit-target probe set)")
    ap.add_argument("--n-bbb", type=int, default=2000,
                    help="molecules probed per measured set (B3DB class; FreeSolv and solubility have fewer)")
    ap.add_argument("--n-logp", type=int, default=2000, help="holdout molecules probed for the RDKit targets")
    ap.add_argument("--targets", default="logp,bbb",
                    help=f"comma-separated probe targets: measured ({','.join(PROPERTY_SETS)}) and RDKit "
                         f"({','.join(RDKIT_TARGETS)})")
    ap.add_argument("--n-train", default="all",
                    help="comma-separated regimes: `all` (5-fold CV on every molecule) and/or a number of "
                         "labelled molecules the probe trains on (default all)")
    ap.add_argument("--repeats", type=int, default=10, help="random splits when --n-train is given")
    ap.add_argument("--random-seeds", type=int, default=3, help="random initialisations per victim")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    # scikit-learn 1.8 announces a change of LogisticRegressionCV's fitted attributes, which we never read
    warnings.filterwarnings("ignore", category=FutureWarning, module="sklearn")
    if args.threads:
        torch.set_num_threads(args.threads)
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    try:
        regimes = [None if r.strip() == "all" else int(r) for r in args.n_train.split(",") if r.strip()]
    except ValueError:
        ap.error(f"--n-train: expected `all` or integers, got {args.n_train!r}")
    unknown = [t for t in targets if t not in PROPERTY_SETS and t not in RDKIT_TARGETS]
    if unknown:
        ap.error(f"unknown target(s) {unknown}; choose from {', '.join([*PROPERTY_SETS, *RDKIT_TARGETS])}")
    sets: dict[str, tuple[list[str], np.ndarray, bool]] = {}
    rdkit_targets = [t for t in targets if t in RDKIT_TARGETS]
    if rdkit_targets:
        smiles = read_smiles(Path(args.data) / "holdout.smi").smiles
        if len(smiles) > args.n_logp:
            pick = np.sort(np.random.default_rng(args.seed).permutation(len(smiles))[: args.n_logp])
            smiles = [smiles[i] for i in pick]
        with rdkit_quiet():
            mols = [Chem.MolFromSmiles(s) for s in smiles]
        for t in rdkit_targets:
            sets[t] = (smiles, np.array([float(RDKIT_TARGETS[t](m)) for m in mols]), False)
    for t in (t for t in targets if t in PROPERTY_SETS):
        sets[t] = measured_set(t, args.n_bbb, args.seed)

    columns = [(t, n) for n in regimes for t in sets]

    def label(column: tuple[str, int | None]) -> str:
        t, n = column
        return t if n is None else f"{t}@{n}"

    def scores_of(victim: Victim) -> dict[str, list[float]]:
        # the victim caches by molecule: each is embedded once for every regime
        return {label((t, n)): probe_score(victim.embed(sets[t][0]), sets[t][1], sets[t][2], n, args.seed,
                                           args.repeats) for t, n in columns}

    rows = []
    random_cache: dict[str, dict[str, list[float]]] = {}  # victims of one architecture share their random inits
    for name in [n for n in ZOO_VICTIMS if (Path(args.zoo) / f"{n}.pt").exists()]:
        path = Path(args.zoo) / f"{name}.pt"
        trained = Victim.from_checkpoint(path)
        spec = read_checkpoint_file(path)["encoder"]
        key = json.dumps([spec["name"], spec["config"]], sort_keys=True)
        if key not in random_cache:
            random_cache[key] = {label(c): [] for c in columns}
            for k in range(args.random_seeds):
                torch.manual_seed(args.seed + k)
                random_init = Victim(build_encoder(spec["name"], spec["config"]), name=f"{name}-random{k}")
                for t, v in scores_of(random_init).items():
                    random_cache[key][t].append(v)
        splits = scores_of(trained)
        rows.append({"victim": name, "encoder": spec["name"], "config": spec["config"],
                     "trained": {c: float(np.mean(v)) for c, v in splits.items()}, "trained_splits": splits,
                     "random": {c: [float(np.mean(v)) for v in draws] for c, draws in random_cache[key].items()},
                     "random_splits": random_cache[key]})
    names = [label(c) for c in columns]
    print(f"probes: {', '.join(f'{t} ({len(sets[t][0])} molecules)' for t in sets)}; `target` = 5-fold CV on all, "
          f"`target@N` = trained on N labelled molecules, {args.repeats} random splits; seed {args.seed}; "
          f"random init: {args.random_seeds} seeds (mean ± sd); bold = above every random-init draw; "
          "ROC-AUC for bbb, R² for the others")
    print("| victim | " + " | ".join(f"{c} trained | {c} random init" for c in names) + " | wins |")
    print("|---|" + "---|---|" * len(names) + "---|")
    for r in rows:
        cells, wins = [], 0
        for c in names:
            rnd = np.asarray(r["random"][c])
            win = r["trained"][c] > rnd.max()
            wins += int(win)
            val = f"{r['trained'][c]:.3f}"
            sd = rnd.std(ddof=1) if len(rnd) > 1 else 0.0
            cells += [f"**{val}**" if win else val, f"{rnd.mean():.3f} ± {sd:.3f}"]
        print(f"| {r['victim']} | " + " | ".join(cells) + f" | {wins}/{len(names)} |")
    # Split by split against the best random draw: a win in every split is not a lucky mean.
    print()
    print("probes won (mean above every random-init draw), each with the splits on which the victim also beats "
          "that probe's best draw (same splits)")
    print("| victim | probes won | won probes: splits won |")
    print("|---|---|---|")
    for r in rows:
        won = []
        for c in names:
            best = int(np.argmax(r["random"][c]))
            if r["trained"][c] > r["random"][c][best]:
                ours, theirs = np.asarray(r["trained_splits"][c]), np.asarray(r["random_splits"][c][best])
                won.append(f"{c} {int((ours > theirs).sum())}/{len(ours)}")
        print(f"| {r['victim']} | {len(won)}/{len(names)} | {', '.join(won) or '-'} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
