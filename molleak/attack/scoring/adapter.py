"""The learned score (method.md section 4): Eq. 1 through three linear adapters and a learned alpha.

Per step, with victim embeddings h(t), h(m), h(g) of the molecule before the step, the motif and
the merged molecule, and heavy-atom counts n_t, n_m:

    alpha = w . [h(t); h(m); h(g)] + b
    s = cos(alpha * n_t * A_t h(t) + (1 - alpha) * n_m * A_m h(m),  A_g h(g))

A multi-step record scores the sum over its steps. Trained on the attacker's weak labels (the pool
labelled against the aux set) with

    loss = sum_pos (-s) + positive_rate * sum_neg s + 50 * sum |alpha| over alphas outside (0, 1],

Adam (lr 1e-3, weight decay 5e-4), full batch, at most 200 steps. Unlike the public code we hold
out a seeded fraction of the pool's molecules (all their records), stop early on held-out ROC-AUC
and keep the best weights; the trained adapter then scores every record. alpha is kept per step.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from molleak.attack.scoring.base import SCORES, Score, ScoreResult, StepTable, heldout_split, molecule_max
from molleak.errors import MolleakError
from molleak.ranking import roc_auc
from molleak.runs import torch_threads

if TYPE_CHECKING:  # pragma: no cover
    from molleak.attack.context import AttackContext

log = logging.getLogger(__name__)

ALPHA_PENALTY = 50.0


class Adapter(nn.Module):
    """alpha layer on [h_t; h_m; h_g] and three linear maps d -> out_dim."""

    def __init__(self, in_dim: int, out_dim: int = 100):
        super().__init__()
        self.alpha = nn.Linear(3 * in_dim, 1)
        self.proj_t = nn.Linear(in_dim, out_dim)
        self.proj_m = nn.Linear(in_dim, out_dim)
        self.proj_g = nn.Linear(in_dim, out_dim)

    def forward(self, h_t: torch.Tensor, h_m: torch.Tensor, h_g: torch.Tensor, n_t: torch.Tensor,
                n_m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-step scores and alphas."""
        alpha = self.alpha(torch.cat([h_t, h_m, h_g], dim=1)).squeeze(1)
        return self._combine(alpha, self.proj_t(h_t), self.proj_m(h_m), self.proj_g(h_g), n_t, n_m), alpha

    def forward_indexed(self, table: torch.Tensor, before: torch.Tensor, motif: torch.Tensor, after: torch.Tensor,
                        n_t: torch.Tensor, n_m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`forward` for steps given as indices into one embedding table: the same function.

        Every map is linear in one embedding, so it runs once per distinct SMILES and is then
        gathered per step; a two-step pool has about 20x more steps than distinct SMILES, and
        gathering first made the full-batch fit take minutes per step.
        """
        d = table.shape[1]
        w = self.alpha.weight.squeeze(0)
        alpha = (table @ w[:d])[before] + (table @ w[d : 2 * d])[motif] + (table @ w[2 * d :])[after] + self.alpha.bias
        return self._combine(alpha, self.proj_t(table)[before], self.proj_m(table)[motif], self.proj_g(table)[after],
                             n_t, n_m), alpha

    @staticmethod
    def _combine(alpha: torch.Tensor, p_t: torch.Tensor, p_m: torch.Tensor, p_g: torch.Tensor, n_t: torch.Tensor,
                 n_m: torch.Tensor) -> torch.Tensor:
        mix = (alpha * n_t).unsqueeze(1) * p_t + ((1.0 - alpha) * n_m).unsqueeze(1) * p_m
        return nn.functional.cosine_similarity(mix, p_g, dim=1, eps=1e-8)


def adapter_loss(scores: torch.Tensor, labels: torch.Tensor, alpha: torch.Tensor,
                 penalty: float = ALPHA_PENALTY) -> torch.Tensor:
    """The paper's loss: -sum over positives + positive_rate * sum over negatives + alpha penalty.

    Args:
        scores: per training record, its score.
        labels: per training record, its weak label (bool).
        alpha: the alphas of the training records' steps.
        penalty: weight of |alpha| for alphas outside (0, 1].
    """
    labels = labels.bool()
    pos_rate = labels.float().mean()
    outside = (alpha <= 0) | (alpha > 1)
    return -scores[labels].sum() + pos_rate * scores[~labels].sum() + penalty * alpha[outside].abs().sum()


@dataclass
class AdapterFit:
    """A trained adapter's per-record scores and per-step alphas, and how training went."""

    record_values: np.ndarray
    step_alpha: np.ndarray
    info: dict[str, Any]
    model: Adapter | None = None  # the trained adapter, to score molecules outside the pool (the search)


def fit_adapter(table: StepTable, emb: np.ndarray, record_molecule: np.ndarray, labels: np.ndarray, seed: int, *,
                out_dim: int = 100, steps: int = 200, lr: float = 1e-3, weight_decay: float = 5e-4,
                heldout: float = 0.2, patience: int = 50) -> AdapterFit:
    """Train the adapter on weak labels with a held-out split; score every record.

    Args:
        table: the pool's steps.
        emb: embeddings of `table.smiles`.
        record_molecule: per record, the index of its molecule.
        labels: per molecule, its weak label.
        seed: seeds the split and the initial weights.
        out_dim: adapter width D.
        steps: most full-batch steps.
        heldout: fraction of molecules held out for early stopping (0 disables it: train all steps).
        patience: steps without a held-out AUC gain before stopping.

    Raises:
        MolleakError: the weak labels hold one class only (nothing to learn from).
    """
    labels = np.asarray(labels, dtype=bool)
    n_mol = len(labels)
    train_mol, held_mol = heldout_split(n_mol, heldout, seed)
    if labels[train_mol].all() or not labels[train_mol].any():
        raise MolleakError(
            f"adapter: the aux weak labels of the training molecules are all {'positive' if labels.all() else 'negative'}; "
            "nothing to learn (use a larger or more varied auxiliary set)"
        )
    with torch_threads(1):  # small full-batch matrices: extra threads only spin (10x slower on a busy machine)
        return _fit(table, emb, record_molecule, labels, seed, train_mol, held_mol, out_dim, steps, lr,
                    weight_decay, patience)


def _fit(table: StepTable, emb: np.ndarray, record_molecule: np.ndarray, labels: np.ndarray, seed: int,
         train_mol: np.ndarray, held_mol: np.ndarray, out_dim: int, steps: int, lr: float, weight_decay: float,
         patience: int) -> AdapterFit:
    n_mol, n_rec = len(labels), len(record_molecule)
    torch.manual_seed(seed)
    model = Adapter(emb.shape[1], out_dim)
    t = torch.from_numpy(np.ascontiguousarray(emb, dtype=np.float32))
    n = torch.from_numpy(table.n_atoms.astype(np.float32))
    # records of a multi-step pool share most of their steps (a two-step pool: ~15x more steps than
    # distinct (before, motif, after) triples): score each distinct triple once, gather per step
    triples, step_triple = np.unique(np.stack([table.before, table.motif, table.after], axis=1), axis=0,
                                     return_inverse=True)
    before, motif, after = (torch.from_numpy(np.ascontiguousarray(triples[:, i])) for i in range(3))
    step_triple = torch.from_numpy(step_triple.reshape(-1))
    n_t, n_m = n[before], n[motif]
    step_rec = torch.from_numpy(table.record)
    rec_train = torch.from_numpy(train_mol[record_molecule])
    step_train = rec_train[step_rec]
    rec_labels = torch.from_numpy(labels[record_molecule])
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    use_heldout = bool(held_mol.any()) and labels[held_mol].any() and not labels[held_mol].all()

    def record_scores() -> tuple[torch.Tensor, torch.Tensor]:
        s, a = model.forward_indexed(t, before, motif, after, n_t, n_m)
        return torch.zeros(n_rec).index_add(0, step_rec, s[step_triple]), a[step_triple]

    best_auc, best_step, best_state, history = -1.0, 0, None, []
    for step in range(steps):
        model.train()
        rec_s, alpha = record_scores()
        loss = adapter_loss(rec_s[rec_train], rec_labels[rec_train], alpha[step_train])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if not use_heldout:
            continue
        with torch.no_grad():
            rec_s, _ = record_scores()
        mol_s, _ = molecule_max(rec_s.numpy(), record_molecule, n_mol)
        auc = roc_auc(labels[held_mol], mol_s[held_mol])
        history.append(round(auc, 5))
        if auc > best_auc:
            best_auc, best_step, best_state = auc, step + 1, copy.deepcopy(model.state_dict())
        elif step + 1 - best_step >= patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    with torch.no_grad():
        rec_s, alpha = record_scores()
    info = {
        "steps_run": len(history) if use_heldout else steps,
        "best_step": best_step if use_heldout else steps,
        "heldout_auc": best_auc if use_heldout else None,
        "heldout_auc_history": history,
        "n_train_molecules": int(train_mol.sum()),
        "n_heldout_molecules": int(held_mol.sum()),
        "final_loss": float(loss.item()),
        "out_dim": out_dim,
    }
    return AdapterFit(rec_s.numpy().astype(np.float64), alpha.numpy().astype(np.float64), info, model)


@SCORES.register("adapter")
class AdapterScore(Score):
    """The learned score, trained on the aux weak labels of the pool."""

    name = "adapter"

    def __init__(self, out_dim: int = 100, steps: int = 200, lr: float = 1e-3, weight_decay: float = 5e-4,
                 heldout: float = 0.2, patience: int = 50):
        self.kwargs = {"out_dim": int(out_dim), "steps": int(steps), "lr": float(lr),
                       "weight_decay": float(weight_decay), "heldout": float(heldout), "patience": int(patience)}

    def __call__(self, ctx: AttackContext) -> ScoreResult:
        fit = fit_adapter(ctx.step_table, ctx.step_embeddings(), ctx.record_molecule, ctx.aux_labels.substructure,
                          ctx.seed, **self.kwargs)
        log.info("adapter: held-out AUC %s at step %s", fit.info["heldout_auc"], fit.info["best_step"])
        values, best = molecule_max(fit.record_values, ctx.record_molecule, len(ctx.smiles))
        alpha_rec = ctx.step_table.alpha_text(fit.step_alpha, len(ctx.records))
        return ScoreResult(values, best, [alpha_rec[b] for b in best], fit.info)
