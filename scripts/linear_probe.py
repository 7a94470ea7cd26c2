"""Linear probes on frozen victim embeddings: does pre-training beat the same encoder at random init?

For every victim checkpoint in a zoo directory, and for the same encoder (same architecture and
config) at random initialisation, fits
  * ridge regression of RDKit Crippen logP on the tier's holdout molecules (never pre-trained on),
    scored by 5-fold cross-validated R^2, and
  * logistic regression of B3DB's BBB+/BBB- class (a random stratified subset), scored by 5-fold
    cross-validated ROC-AUC.
Embeddings are standardised inside each fold. The random-initialisation baseline is drawn with
`--random-seeds` different seeds (mean and standard deviation reported); a victim "beats random
init" on a probe when its score is above the best of those draws. Prints a Markdown table.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/linear_probe.py --zoo /tmp/zoo --data /tmp/tiny --seed 0

Note: the regression victim was fine-tuned on B3DB logBB, whose molecules overlap B3DB's
classification set, so its BBB column is not a held-out property.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
from pathlib import Path

import numpy as np
import torch
from rdkit import Chem
from rdkit.Chem import Crippen
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from molleak.chem import canonical_smiles, rdkit_quiet
from molleak.data.smiles_io import read_smiles
from molleak.data.sources import _dist_file
from molleak.models.base import build_encoder
from molleak.models.checkpoint import read_checkpoint_file
from molleak.models.victim import Victim
from molleak.zoo import ZOO_VICTIMS


def bbb_set(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    path = _dist_file("qc-b3db", "B3DB/B3DB_classification.tsv", "install qc-b3db")
    smiles, labels, seen = [], [], set()
    with rdkit_quiet():
        for row in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")), delimiter="\t"):
            can = canonical_smiles(row.get("SMILES") or "")
            if can is None or "*" in can or can in seen or row.get("BBB+/BBB-") not in {"BBB+", "BBB-"}:
                continue
            seen.add(can)
            smiles.append(can)
            labels.append(row["BBB+/BBB-"] == "BBB+")
    idx = np.random.default_rng(seed).permutation(len(smiles))[:n]
    return [smiles[i] for i in idx], np.asarray(labels)[idx].astype(int)


def probe_scores(emb: np.ndarray, y_logp: np.ndarray, emb_bbb: np.ndarray, y_bbb: np.ndarray,
                 seed: int) -> tuple[float, float]:
    ridge = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 4, 13)))
    r2 = cross_val_score(ridge, emb, y_logp, cv=KFold(5, shuffle=True, random_state=seed), scoring="r2").mean()
    logit = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000))
    auc = cross_val_score(logit, emb_bbb, y_bbb, cv=StratifiedKFold(5, shuffle=True, random_state=seed),
                          scoring="roc_auc").mean()
    return float(r2), float(auc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zoo", required=True, help="directory with <strategy>.pt victims")
    ap.add_argument("--data", required=True, help="tier directory (its holdout.smi is the logP probe set)")
    ap.add_argument("--n-bbb", type=int, default=2000, help="B3DB classification molecules probed")
    ap.add_argument("--n-logp", type=int, default=2000, help="holdout molecules probed for logP (a seeded sample)")
    ap.add_argument("--random-seeds", type=int, default=3, help="random initialisations per victim")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    logp_smiles = read_smiles(Path(args.data) / "holdout.smi").smiles
    if len(logp_smiles) > args.n_logp:
        pick = np.sort(np.random.default_rng(args.seed).permutation(len(logp_smiles))[: args.n_logp])
        logp_smiles = [logp_smiles[i] for i in pick]
    with rdkit_quiet():
        y_logp = np.array([Crippen.MolLogP(Chem.MolFromSmiles(s)) for s in logp_smiles])
    bbb_smiles, y_bbb = bbb_set(args.n_bbb, args.seed)
    rows = []
    for name in [n for n in ZOO_VICTIMS if (Path(args.zoo) / f"{n}.pt").exists()]:
        path = Path(args.zoo) / f"{name}.pt"
        trained = Victim.from_checkpoint(path)
        spec = read_checkpoint_file(path)["encoder"]
        trained_scores = probe_scores(trained.embed(logp_smiles), y_logp, trained.embed(bbb_smiles), y_bbb,
                                      args.seed)
        random_scores = []
        for k in range(args.random_seeds):
            torch.manual_seed(args.seed + k)
            random_init = Victim(build_encoder(spec["name"], spec["config"]), name=f"{name}-random{k}")
            random_scores.append(probe_scores(random_init.embed(logp_smiles), y_logp, random_init.embed(bbb_smiles),
                                              y_bbb, args.seed))
        rnd = np.asarray(random_scores)
        rows.append({"victim": name, "encoder": spec["name"], "config": spec["config"],
                     "logp_r2": trained_scores[0], "bbb_auc": trained_scores[1],
                     "logp_r2_random": rnd[:, 0].tolist(), "bbb_auc_random": rnd[:, 1].tolist()})
    print(f"logP probe: {len(logp_smiles)} holdout molecules; BBB probe: {len(bbb_smiles)} B3DB molecules "
          f"({int(y_bbb.sum())} BBB+); 5-fold CV, seed {args.seed}; random init: {args.random_seeds} seeds "
          f"(mean ± sd); bold = above every random-init draw")
    print("| victim | logP R² trained | logP R² random init | BBB AUC trained | BBB AUC random init |")
    print("|---|---|---|---|---|")
    for r in rows:
        cells = []
        for key in ("logp_r2", "bbb_auc"):
            rnd = np.asarray(r[f"{key}_random"])
            val = f"{r[key]:.3f}"
            cells += [f"**{val}**" if r[key] > rnd.max() else val, f"{rnd.mean():.3f} ± {rnd.std(ddof=1) if len(rnd) > 1 else 0:.3f}"]
        print(f"| {r['victim']} | " + " | ".join(cells) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
