"""Linear probes on frozen victim embeddings: does pre-training beat the same encoder at random init?

For every victim checkpoint in a zoo directory, and for the same encoder (same architecture and
config) at random initialisation, fits
  * ridge regression of RDKit Crippen logP on the tier's holdout molecules (never pre-trained on),
    scored by 5-fold cross-validated R^2, and
  * logistic regression of B3DB's BBB+/BBB- class (a random stratified subset), scored by 5-fold
    cross-validated ROC-AUC.
Embeddings are standardised inside each fold. Prints a Markdown table.

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
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    logp_smiles = read_smiles(Path(args.data) / "holdout.smi").smiles
    with rdkit_quiet():
        y_logp = np.array([Crippen.MolLogP(Chem.MolFromSmiles(s)) for s in logp_smiles])
    bbb_smiles, y_bbb = bbb_set(args.n_bbb, args.seed)
    rows = []
    for name in [n for n in ZOO_VICTIMS if (Path(args.zoo) / f"{n}.pt").exists()]:
        path = Path(args.zoo) / f"{name}.pt"
        trained = Victim.from_checkpoint(path)
        spec = read_checkpoint_file(path)["encoder"]
        torch.manual_seed(args.seed)
        random_init = Victim(build_encoder(spec["name"], spec["config"]), name=f"{name}-random")
        scores = {}
        for label, victim in (("trained", trained), ("random", random_init)):
            scores[label] = probe_scores(victim.embed(logp_smiles), y_logp, victim.embed(bbb_smiles), y_bbb,
                                         args.seed)
        rows.append({"victim": name, "encoder": spec["name"], "config": spec["config"],
                     "logp_r2": scores["trained"][0], "logp_r2_random": scores["random"][0],
                     "bbb_auc": scores["trained"][1], "bbb_auc_random": scores["random"][1]})
    print(f"logP probe: {len(logp_smiles)} holdout molecules; BBB probe: {len(bbb_smiles)} B3DB molecules "
          f"({int(y_bbb.sum())} BBB+); 5-fold CV, seed {args.seed}")
    print("| victim | logP R² trained | logP R² random init | BBB AUC trained | BBB AUC random init |")
    print("|---|---|---|---|---|")
    for r in rows:
        mark = lambda a, b: f"**{a:.3f}**" if a > b else f"{a:.3f}"  # noqa: E731
        print(f"| {r['victim']} | {mark(r['logp_r2'], r['logp_r2_random'])} | {r['logp_r2_random']:.3f} | "
              f"{mark(r['bbb_auc'], r['bbb_auc_random'])} | {r['bbb_auc_random']:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
