"""Scores on hand-made embeddings: Eq. 1, the adapter's loss and training, baselines, priors, ranking."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from molleak.attack.context import AttackContext
from molleak.attack.methods import rank_pool
from molleak.attack.scoring.adapter import adapter_loss, fit_adapter
from molleak.attack.scoring.base import StepTable, build_score, molecule_max
from molleak.attack.scoring.eq1 import SWEEP, eq1_step_scores
from molleak.candidates.pool import CandidateRecord, Step
from molleak.errors import MolleakError
from molleak.ranking import rank_order


class TableVictim:
    """A victim answering from a fixed SMILES -> embedding table (counts queries like `Victim`)."""

    def __init__(self, table: dict[str, np.ndarray]):
        self.table, self.queries, self.seen, self.calls = table, 0, set(), 0
        self.provenance: dict = {}
        self.name = "table"

    def embed(self, smiles):
        self.calls += 1
        new = {s for s in smiles if s not in self.seen}
        self.queries += len(new)
        self.seen |= new
        return np.stack([self.table[s] for s in smiles]).astype(np.float32)


def _record(smiles, template, steps):
    return CandidateRecord(smiles, template, tuple((0, i, 0) for i in range(len(steps))),
                           tuple(Step(*s) for s in steps))


def test_eq1_is_one_when_merged_embedding_is_the_size_weighted_mix():
    rng = np.random.default_rng(0)
    h_t, h_m = rng.normal(size=(5, 8)), rng.normal(size=(5, 8))
    n_t, n_m = np.array([6.0, 6, 5, 9, 10]), np.array([1.0, 2, 3, 1, 4])
    for alpha in (0.0, 0.3, 0.5, 1.0):
        h_g = (alpha * n_t)[:, None] * h_t + ((1 - alpha) * n_m)[:, None] * h_m
        np.testing.assert_allclose(eq1_step_scores(h_t, h_m, 3.7 * h_g, n_t, n_m, alpha), 1.0, atol=1e-12)
    # and not 1 for another alpha
    h_g = (0.9 * n_t)[:, None] * h_t + (0.1 * n_m)[:, None] * h_m
    assert np.all(eq1_step_scores(h_t, h_m, h_g, n_t, n_m, 0.1) < 0.999)


def _toy_context(seed=0):
    """Benzene + methyl/chloro/hydroxy; toluene reached by two records; one two-step record."""
    rng = np.random.default_rng(seed)
    emb = {s: rng.normal(size=4) for s in ["c1ccccc1", "C", "Cl", "O", "Cc1ccccc1", "Clc1ccccc1", "Oc1ccccc1",
                                             "Cc1ccccc1O"]}
    # toluene embeds exactly as the alpha=0.5 size-weighted mix of benzene (6 atoms) and methane (1)
    emb["Cc1ccccc1"] = 0.5 * 6 * emb["c1ccccc1"] + 0.5 * 1 * emb["C"]
    records = [
        _record("Cc1ccccc1", 0, [("c1ccccc1", "C", "Cc1ccccc1")]),
        _record("Clc1ccccc1", 0, [("c1ccccc1", "Cl", "Clc1ccccc1")]),
        _record("Oc1ccccc1", 0, [("c1ccccc1", "O", "Oc1ccccc1")]),
        _record("Cc1ccccc1", 1, [("c1ccccc1", "Cl", "Cc1ccccc1")]),  # a second, worse decomposition
        _record("Cc1ccccc1O", 0, [("c1ccccc1", "C", "Cc1ccccc1"), ("Cc1ccccc1", "O", "Cc1ccccc1O")]),
    ]
    victim = TableVictim(emb)
    ctx = AttackContext(aux_smiles=["Cc1ccccc1O"], seed=seed, records=records, victim=victim)
    ctx._aux_labels = SimpleNamespace(substructure=np.array([True, False, True, True]), count=np.array([3, 0, 1, 1]))
    return ctx, victim, emb


def test_eq1_score_takes_max_over_records_and_sums_over_steps():
    ctx, victim, emb = _toy_context()
    res = build_score("eq1", {"alpha": 0.5})(ctx)
    assert ctx.smiles == ["Cc1ccccc1", "Clc1ccccc1", "Oc1ccccc1", "Cc1ccccc1O"]
    assert res.values[0] == pytest.approx(1.0)
    assert res.best_record[0] == 0  # the exact-mix decomposition, not record 3
    assert res.alpha[0] == "0.5000"
    # the two-step molecule: the sum of its two steps' Eq. 1 scores
    n = {"c1ccccc1": 6.0, "C": 1.0, "O": 1.0, "Cc1ccccc1": 7.0}
    s1 = eq1_step_scores(emb["c1ccccc1"][None], emb["C"][None], emb["Cc1ccccc1"][None], np.array([6.0]),
                         np.array([1.0]), 0.5)[0]
    s2 = eq1_step_scores(emb["Cc1ccccc1"][None], emb["O"][None], emb["Cc1ccccc1O"][None], np.array([n["Cc1ccccc1"]]),
                         np.array([1.0]), 0.5)[0]
    assert res.values[3] == pytest.approx(s1 + s2)
    assert res.alpha[3] == "0.5000;0.5000"
    # every distinct step SMILES was embedded once, in one batched call
    assert victim.calls == 1 and victim.queries == len(ctx.step_table.smiles) == 8


def test_eq1_sweep_picks_the_best_alpha_on_aux_labels():
    ctx, _, _ = _toy_context()
    res = build_score("eq1", {})(ctx)
    aucs = res.info["aux_auc_per_alpha"]
    assert set(aucs) == {str(a) for a in SWEEP}
    finite = {float(a): v for a, v in aucs.items() if v == v}
    assert res.info["alpha"] == max(finite, key=finite.get)
    with pytest.raises(MolleakError, match="alpha"):
        build_score("eq1", {"alpha": "half"})


def test_molecule_max_and_rank_order():
    vals, best = molecule_max(np.array([0.1, 0.7, 0.3, 0.9]), np.array([0, 0, 1, 2]), 4)
    np.testing.assert_array_equal(vals[:3], [0.7, 0.3, 0.9])
    assert np.isnan(vals[3]) and best.tolist() == [1, 2, 3, -1]
    scores = np.array([0.5, np.nan, 0.9, 0.5, 0.5, 0.1])
    order = rank_order(scores, seed=1)
    assert order[0] == 2 and order[-1] == 5 and 1 not in order and len(order) == 5
    assert set(order[1:4]) == {0, 3, 4}
    assert rank_order(scores, 1).tolist() == order.tolist()
    ties = {tuple(rank_order(np.zeros(6), s)) for s in range(10)}
    assert len(ties) > 1  # ties are broken at random, by the seed


def test_adapter_loss_matches_hand_computation():
    scores = torch.tensor([0.5, -0.2, 0.1, 0.4])
    labels = torch.tensor([True, False, False, True])
    alpha = torch.tensor([0.5, 1.5, -0.1, 1.0, 0.0])  # 1.0 is inside (0, 1]; 0.0 is outside but |0| = 0
    expected = -(0.5 + 0.4) + 0.5 * (-0.2 + 0.1) + 50 * (1.5 + 0.1)
    assert adapter_loss(scores, labels, alpha).item() == pytest.approx(expected)


def _planted_pool(n=300, d=16, seed=0):
    """Positives embed as the alpha=0.7 mix of their parts; negatives embed at random."""
    rng = np.random.default_rng(seed)
    smiles, rec_mol, bef, mot, aft = [], [], [], [], []
    parts = rng.normal(size=(20, d))
    emb = [p for p in parts]
    n_atoms = list(rng.integers(4, 10, size=20).astype(float))
    labels = rng.random(n) < 0.4
    for i in range(n):
        t, m = rng.integers(0, 10), rng.integers(10, 20)
        if labels[i]:
            g = 0.7 * n_atoms[t] * parts[t] + 0.3 * n_atoms[m] * parts[m] + 0.05 * rng.normal(size=d)
        else:
            g = rng.normal(size=d) * 5
        emb.append(g)
        n_atoms.append(n_atoms[t] + n_atoms[m])
        smiles.append(f"g{i}")
        rec_mol.append(i)
        bef.append(t)
        mot.append(m)
        aft.append(20 + i)
    table = StepTable([f"p{i}" for i in range(20)] + smiles, np.arange(n), np.array(bef), np.array(mot),
                      np.array(aft), np.array(n_atoms))
    return table, np.array(emb), np.array(rec_mol), labels


def test_adapter_learns_a_planted_signal_with_heldout_early_stopping_and_is_seeded():
    table, emb, rec_mol, labels = _planted_pool()
    fit = fit_adapter(table, emb, rec_mol, labels, seed=3, out_dim=16)
    assert fit.info["heldout_auc"] > 0.9
    assert fit.info["n_heldout_molecules"] == 60
    assert 1 <= fit.info["best_step"] <= 200
    assert fit.step_alpha.shape == (300,) and np.isfinite(fit.step_alpha).all()
    again = fit_adapter(table, emb, rec_mol, labels, seed=3, out_dim=16)
    np.testing.assert_array_equal(fit.record_values, again.record_values)
    other = fit_adapter(table, emb, rec_mol, labels, seed=4, out_dim=16)
    assert not np.array_equal(fit.record_values, other.record_values)


def test_adapter_refuses_one_class_labels():
    table, emb, rec_mol, _ = _planted_pool(n=40)
    with pytest.raises(MolleakError, match="all negative"):
        fit_adapter(table, emb, rec_mol, np.zeros(40, dtype=bool), seed=0)


def test_adapter_score_keeps_alpha_per_candidate():
    ctx, _, _ = _toy_context()
    res = build_score("adapter", {"steps": 5, "out_dim": 4, "heldout": 0.0})(ctx)
    assert len(res.alpha) == 4 and len(res.alpha[3].split(";")) == 2
    assert np.isfinite(res.values).all()


def test_random_is_seeded():
    a, _, _ = _toy_context(seed=5)
    b, _, _ = _toy_context(seed=5)
    c, _, _ = _toy_context(seed=6)
    ra, rb, rc = (build_score("random")(x).values for x in (a, b, c))
    np.testing.assert_array_equal(ra, rb)
    assert not np.array_equal(ra, rc)


def test_qed_and_sa_on_finalised_molecules():
    ctx, victim, _ = _toy_context()
    qed = build_score("qed")(ctx).values
    sa = build_score("sa")(ctx).values
    from rdkit import Chem
    from rdkit.Chem import QED

    assert qed[0] == pytest.approx(QED.qed(Chem.MolFromSmiles("Cc1ccccc1")))
    from rdkit.Contrib.SA_Score import sascorer

    assert sa[3] == pytest.approx(-sascorer.calculateScore(Chem.MolFromSmiles("Cc1ccccc1O")))
    assert np.all(sa <= -1) and np.all(sa >= -10)  # -SA, SA in [1, 10]
    assert victim.queries == 0  # victim-free


def test_priors_never_touch_the_victim():
    ctx, victim, _ = _toy_context()
    np.testing.assert_array_equal(build_score("prior_freq")(ctx).values, [3, 0, 1, 1])
    fp = build_score("prior_fp")(ctx).values
    assert fp.shape == (4,) and np.all((fp > 0) & (fp < 1))
    assert fp[1] == fp.min()  # the only negative scores lowest when fitting its own labels
    assert victim.queries == 0


def test_mlp_on_victim_embeddings_separates_planted_labels():
    rng = np.random.default_rng(0)
    smiles = [f"C{'C' * i}O" for i in range(200)]
    labels = rng.random(200) < 0.5
    table = {s: rng.normal(size=8) + (3.0 if y else 0.0) for s, y in zip(smiles, labels, strict=True)}
    records = [_record(s, 0, [("C", "O", s)]) for s in smiles]
    table.update({"C": np.zeros(8), "O": np.ones(8)})
    ctx = AttackContext(aux_smiles=[], seed=0, records=records, victim=TableVictim(table))
    ctx._aux_labels = SimpleNamespace(substructure=labels, count=labels.astype(int))
    out = rank_pool(ctx, "mlp")
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(labels, out.scores) > 0.95
    assert all(p.startswith("template=0;core=C;actions=0,0,0") for p in out.provenance)


def test_unknown_score_and_bad_options_are_one_line_errors():
    with pytest.raises(MolleakError, match="unknown score"):
        build_score("nope")
    with pytest.raises(MolleakError, match="bad options for score random"):
        build_score("random", {"bogus": 1})


def test_calibrated_needs_a_recipe_or_a_shadow():
    from molleak.attack.scoring.calibrated import shadow_config, shadow_seed

    with pytest.raises(MolleakError, match="shadow"):
        shadow_config({"strategy": "imported"}, seed=0)
    cfg = shadow_config({"config": {"strategy": "attrmask", "epochs": 3, "seed": 9,
                                    "encoder_config": {"num_layers": 2, "emb_dim": 32}}}, seed=1, epochs=2)
    assert cfg.strategy == "attrmask" and cfg.epochs == 2
    assert cfg.seed == shadow_seed(1) and cfg.seed not in (0, 1, 9)
    assert cfg.encoder_config == {"num_layers": 2, "emb_dim": 32}
    # a victim from an older recipe (EdgePred before its collapse fix) gets no silently newer shadow
    old_edgepred = {"config": {"strategy": "edgepred"}, "recipe_version": 1}
    with pytest.raises(MolleakError, match="version 1 of the edgepred recipe"):
        shadow_config(old_edgepred, seed=0)


def test_the_shadow_never_starts_from_the_victims_initial_weights(tmp_path, moses_sample):
    """Attack seed = victim seed (both 0, the defaults): the shadow's initial weights still differ."""
    import torch

    from molleak.attack.scoring.calibrated import shadow_config
    from molleak.models.base import build_encoder
    from molleak.pretrain.trainer import PretrainConfig

    victim_recipe = PretrainConfig(strategy="attrmask", epochs=1, seed=0,
                                   encoder_config={"num_layers": 2, "emb_dim": 16})
    shadow_recipe = shadow_config({"config": {"strategy": "attrmask", "epochs": 1, "seed": 0,
                                              "encoder_config": {"num_layers": 2, "emb_dim": 16}}}, seed=0)

    def init(recipe):
        torch.manual_seed(recipe.seed)  # as the trainer does before building the encoder
        return build_encoder(recipe.encoder, recipe.encoder_config).state_dict()

    v, s = init(victim_recipe), init(shadow_recipe)
    assert any(not torch.equal(v[k], s[k]) for k in v if v[k].is_floating_point())


def test_membership_score_ranks_what_the_victim_inflates_over_its_shadow(tiny_victim, moses_sample):
    from molleak.models.victim import Victim

    smiles = moses_sample[:60]
    planted = set(smiles[5:15])

    class InflatingVictim:
        """The shadow's weights, with the embeddings of the planted molecules scaled up (what
        repeated contrastive training does to a member's norm)."""

        def __init__(self, base):
            self.base, self.provenance, self.name = base, base.provenance, "victim"

        def embed(self, batch):
            emb = self.base.embed(batch).astype(np.float64)
            return emb * np.array([[1.5] if s in planted else [1.0] for s in batch])

    records = [_record(s, 0, [(s, s, s)]) for s in smiles]
    ctx = AttackContext(aux_smiles=[], seed=0, records=records,
                        victim=InflatingVictim(Victim.from_checkpoint(tiny_victim)))
    out = rank_pool(ctx, "membership", {"shadow": str(tiny_victim)})
    top = [ctx.smiles[i] for i in rank_order(out.scores, 0)[:10]]
    assert set(top) == planted
    assert out.info["statistic"] == "norm" and out.info["shadow"] == str(tiny_victim)
    with pytest.raises(MolleakError, match="unknown membership statistic"):
        build_score("membership", {"statistic": "nope"})
    with pytest.raises(MolleakError, match="not found"):
        rank_pool(ctx, "membership", {"shadow": "/nonexistent.pt"})


def test_adapter_indexed_forward_is_the_gathered_forward():
    from molleak.attack.scoring.adapter import Adapter

    torch.manual_seed(0)
    model = Adapter(12, 5)
    table = torch.randn(30, 12)
    idx = [torch.randint(0, 30, (200,)) for _ in range(3)]
    n_t, n_m = torch.rand(200) * 20, torch.rand(200) * 10
    s_gathered, a_gathered = model(table[idx[0]], table[idx[1]], table[idx[2]], n_t, n_m)
    s_indexed, a_indexed = model.forward_indexed(table, *idx, n_t, n_m)
    torch.testing.assert_close(a_indexed, a_gathered, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(s_indexed, s_gathered, rtol=1e-5, atol=1e-6)
    s_gathered.sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    s_indexed.sum().backward()
    for g, p in zip(grads, model.parameters(), strict=True):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-5)
