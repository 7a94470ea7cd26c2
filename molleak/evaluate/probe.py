"""Linear probes on frozen victim embeddings: does pre-training beat the same encoder at random init?

For every victim checkpoint in a zoo directory (`<name>.pt` for the names in `molleak.victims.zoo.ZOO_VICTIMS`),
or every checkpoint given (molleak victims or raw pretrain-gnns state_dicts, e.g. the published GCN /
GraphSAGE / GAT encoders), and for the same encoder (same architecture and config) at random
initialisation, `run_probes` fits

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
formats the result as two Markdown tables with the multiplicity between them (`multiplicity`: what
chance alone gives, and a Holm-corrected t prediction test of each victim x probe against its draws).

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


def _victim_paths(zoo_dir: str | Path | None, victims: list[str | Path] | None) -> dict[str, Path]:
    """name -> checkpoint: the zoo's `<name>.pt` for the names in ZOO_VICTIMS, or the given files by stem."""
    from molleak.victims.zoo import ZOO_VICTIMS

    if (zoo_dir is None) == (victims is None):
        raise MolleakError("probe a zoo directory or a list of victim checkpoints (one of the two)")
    if victims is None:
        zoo = Path(zoo_dir)
        paths = {n: zoo / f"{n}.pt" for n in ZOO_VICTIMS if (zoo / f"{n}.pt").is_file()}
        if not paths:
            raise InputFileError(f"{zoo}: no victim checkpoint (expected <name>.pt for a name in "
                                 f"{', '.join(ZOO_VICTIMS)})")
        return paths
    paths = {}
    for p in map(Path, victims):
        if not p.is_file():
            raise InputFileError(f"{p}: victim checkpoint not found")
        if p.stem in paths:
            raise MolleakError(f"two victims named {p.stem} ({paths[p.stem]}, {p}); rename one")
        paths[p.stem] = p
    if not paths:
        raise MolleakError("no victim checkpoint given")
    return paths


def run_probes(
    zoo_dir: str | Path | None,
    data_dir: str | Path | None,
    *,
    victims: list[str | Path] | None = None,
    targets: list[str],
    regimes: list[int | None],
    n_measured: int = 2000,
    n_rdkit: int = 2000,
    repeats: int = 10,
    random_seeds: int = 3,
    seed: int = 0,
) -> dict[str, Any]:
    """Probe every zoo victim (or every checkpoint in `victims`: molleak victims or raw pretrain-gnns
    state_dicts) and the same encoder at `random_seeds` random initialisations. `data_dir` (a tier's
    holdout.smi) is needed only for the RDKit targets.

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
    from molleak.models.checkpoint import encoder_name
    from molleak.models.victim import Victim

    check_targets(targets)
    paths = _victim_paths(zoo_dir, victims)
    sets: dict[str, tuple[list[str], np.ndarray, bool]] = {}
    rdkit_targets = [t for t in targets if t in RDKIT_TARGETS]
    if rdkit_targets:
        if data_dir is None:
            raise MolleakError(f"the RDKit targets ({', '.join(rdkit_targets)}) are probed on a tier's holdout "
                               "molecules: give its directory (--data)")
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
    for name, path in paths.items():
        trained = Victim.from_checkpoint(path)
        spec = {"name": encoder_name(trained.encoder), "config": trained.encoder.config()}
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
    res = {"sets": {t: len(s[0]) for t, s in sets.items()}, "columns": [label(*c) for c in columns],
           "repeats": repeats, "random_seeds": random_seeds, "seed": seed, "rows": rows}
    res["multiplicity"] = multiplicity(res)
    return res


def random_init_pvalue(trained: float, draws: list[float]) -> float:
    """One-sided p-value that `trained` comes from the distribution of the random-init draws.

    The t prediction test for one new value against R draws assumed normal:
    t = (trained - mean) / (sd * sqrt(1 + 1/R)), R - 1 degrees of freedom. NaN with fewer than 2 draws.
    (With R draws, "beats every draw" alone can never be rarer than 1/(R+1) by chance.)
    """
    from scipy.stats import t as student_t

    d = np.asarray(draws, dtype=float)
    if len(d) < 2:
        return float("nan")
    sd = d.std(ddof=1)
    if sd == 0:
        return 0.0 if trained > d.mean() else 1.0
    return float(student_t.sf((trained - d.mean()) / (sd * np.sqrt(1 + 1 / len(d))), df=len(d) - 1))


def multiplicity(res: dict[str, Any], alpha: float = 0.05) -> dict[str, Any]:
    """Every (victim, probe) comparison with its p-value against the random-init draws, Holm-corrected
    over all of them, and what chance alone gives the "beats every draw" count."""
    rows = [(r["victim"], c, r["trained"][c], r["random"][c]) for r in res["rows"] for c in res["columns"]]
    pvals = [random_init_pvalue(t, d) for _, _, t, d in rows]
    from molleak.evaluate.metrics import holm_adjust

    keep = [bool(p <= alpha) for p in holm_adjust(pvals)]  # NaN (an undefined test) is never a rejection
    draws = res["random_seeds"]
    return {"comparisons": len(rows), "alpha": alpha, "random_seeds": draws,
            "chance_wins": len(rows) / (draws + 1), "wins": sum(t > max(d) for _, _, t, d in rows),
            "tests": [{"victim": v, "probe": c, "trained": t, "random_mean": float(np.mean(d)),
                       "random_sd": float(np.std(d, ddof=1)) if len(d) > 1 else 0.0, "p": p, "holm": k}
                      for (v, c, t, d), p, k in zip(rows, pvals, keep, strict=True)]}


def multiplicity_lines(res: dict[str, Any]) -> list[str]:
    m = res.get("multiplicity") or multiplicity(res)
    held = [t for t in m["tests"] if t["holm"]]
    lines = ["", f"multiplicity: {m['comparisons']} comparisons ({len(res['rows'])} victims x {len(res['columns'])} "
                 f"probes); a score exchangeable with {m['random_seeds']} random-init draws beats all of them with "
                 f"probability 1/{m['random_seeds'] + 1}, so chance alone gives about {m['chance_wins']:.1f} such wins "
                 f"(observed {m['wins']}). One-sided t prediction test of the trained score against the draws "
                 f"(assumes random-init scores normal over seeds), Holm-corrected over all {m['comparisons']} at "
                 f"family-wise {m['alpha']}: {len(held)} hold" + (":" if held else ".")]
    if held:
        lines += ["| victim | probe | trained | random init | p |", "|---|---|---|---|---|"]
        lines += [f"| {t['victim']} | {t['probe']} | {t['trained']:.3f} | {t['random_mean']:.3f} ± {t['random_sd']:.3f} "
                  f"| {t['p']:.1e} |" for t in sorted(held, key=lambda t: t["p"])]
    return lines


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
    lines += multiplicity_lines(res)
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
