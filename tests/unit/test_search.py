"""The search package: environment masks and records, the archive, and the planted-problem test."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from molleak.attack.search.agent import Archive, FunctionReward, PolicySearch, SearchConfig
from molleak.attack.search.env import ActionSpace, AssemblyEnv
from molleak.attack.search.policy import StateBatch
from molleak.candidates.assemble import apply_actions, finalize

TEMPLATES = ["*c1ccc(*)cc1", "*C1CCN(*)CC1", "*c1ccncc1", "*c1ccc2[nH]ccc2c1"]
MOTIFS = ["Cl[*:1]", "C[*:1]", "O[*:1]", "N[*:1]", "O=C([*:1])[*:2]", "c1cc([*:1])sc1[*:2]", "F[*:1]", "CC([*:1])[*:2]"]
TARGET_MOTIF, TARGET_POINT = 5, 1  # the planted reward: thiophene through its second point, first step


def planted(ep) -> float:
    """1 when the first step attaches the target motif by the target motif point, else 0."""
    return float(bool(ep.actions) and ep.actions[0][1] == TARGET_MOTIF and ep.actions[0][2] == TARGET_POINT)


@pytest.fixture(scope="module")
def space() -> ActionSpace:
    return ActionSpace(TEMPLATES, MOTIFS)


def test_episode_records_match_the_shared_assembly(space):
    env = AssemblyEnv(space, 2)
    episodes = env.random_rollouts(50, np.random.default_rng(0))
    assert env.n_failed == 0
    for ep in episodes:
        rec = ep.record()
        assert 1 <= len(rec.steps) <= 2
        # the same actions through the shared assemble/finalise give the same molecule
        assert finalize(apply_actions(TEMPLATES[rec.template], rec.actions, MOTIFS)) == rec.smiles
        assert rec.steps[0].before == finalize(TEMPLATES[rec.template])
        for a, b in zip(rec.steps, rec.steps[1:], strict=False):
            assert a.after == b.before
        assert "*" not in rec.smiles


def test_episode_ends_when_no_point_is_open(space):
    env = AssemblyEnv(space, 3)
    (ep,) = env.reset([2])  # one point
    env.step(ep, (0, 0, 0))  # Cl closes it
    assert ep.done and ep.smiles == "Clc1ccncc1"
    (ep,) = env.reset([2])
    with pytest.raises(ValueError):
        env.step(ep, (1, 0, 0))  # point 1 does not exist: masked
    with pytest.raises(ValueError):
        env.step(ep, (0, 0, 1))  # Cl has one point only


def test_policy_masks_only_valid_actions(space):
    from molleak.attack.search.policy import PolicyNet

    torch.manual_seed(0)
    net = PolicyNet(space, hidden=16, layers=2, max_steps=2)
    env = AssemblyEnv(space, 2)
    g = torch.Generator().manual_seed(0)
    episodes = env.reset([0, 1, 2, 3] * 20)
    out = net.act(StateBatch.build(episodes), g)
    for ep, a in zip(episodes, out.actions, strict=True):
        assert env.valid_action(ep, a)
    assert torch.isfinite(out.log_prob).all() and torch.isfinite(out.entropy).all()
    # log-probabilities of given actions agree with the sampled ones
    again = net.act(StateBatch.build(episodes), forced=out.actions)
    assert torch.allclose(again.log_prob, out.log_prob, atol=1e-5)


def test_archive_keeps_best_reward_and_first_find():
    a = Archive()
    a.add("CCO", 0.1, 1, 10, "p1")
    a.add("CCO", 0.5, 3, 30, "p2")
    a.add("CCN", 0.2, 2, 20, "p3")
    a.add("CCO", 0.3, 4, 40, "p4")
    b = Archive.from_state(a.state())
    assert b.smiles == ["CCO", "CCN"] and b.reward == [0.5, 0.2] and b.update == [1, 2] and b.queries == [10, 20]
    assert b.provenance == ["p2", "p3"] and b.count == [3, 1]
    assert a.top_mean(1) == 0.5


def test_archive_rescore_replaces_rewards_of_known_molecules_only():
    a = Archive()
    a.add("CCO", 0.1, 1, 10, "p1")
    a.add("CCN", 0.2, 2, 20, "p2")
    a.rescore({"CCN": -1.0, "CCC": 9.0})
    assert a.reward == [0.1, -1.0] and "CCC" not in a


def _run(space, learn: bool, seed: int, updates: int = 25) -> PolicySearch:
    torch.set_num_threads(1)
    s = PolicySearch(space, 2, FunctionReward(planted), SearchConfig(batch=32, learn=learn, lr=3e-3, hidden=32, repeat_penalty=0.0, min_new_fraction=0.0,
                                                                       layers=2), seed=seed)
    s.run(max_updates=updates)
    return s


def test_planted_problem_policy_beats_random_and_is_reproducible(space):
    learned = _run(space, True, seed=0)
    rand = _run(space, False, seed=0)
    late = np.mean([c["mean_reward"] for c in learned.curve[-5:]])
    early = np.mean([c["mean_reward"] for c in learned.curve[:3]])
    random_mean = np.mean([c["mean_reward"] for c in rand.curve])
    # uniform actions hit the planted action about 1/2 (point) * 1/8 (motif) * 1/2 (motif point) of the time
    assert random_mean < 0.15
    assert early < 0.3
    assert late > 0.8, (early, late, random_mean)
    again = _run(space, True, seed=0)
    assert [c["mean_reward"] for c in again.curve] == [c["mean_reward"] for c in learned.curve]
    assert again.archive.smiles == learned.archive.smiles


def test_checkpoint_resume_continues_identically(space):
    full = _run(space, True, seed=1, updates=8)
    half = _run(space, True, seed=1, updates=4)
    state = half.state()
    buf = __import__("io").BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    resumed = PolicySearch(space, 2, FunctionReward(planted), SearchConfig(batch=32, learn=True, lr=3e-3, hidden=32, repeat_penalty=0.0, min_new_fraction=0.0,
                                                                           layers=2), seed=1)
    resumed.load_state(torch.load(buf, weights_only=True))
    resumed.run(max_updates=8)
    assert [c["mean_reward"] for c in resumed.curve] == [c["mean_reward"] for c in full.curve]
    assert resumed.archive.state() == full.archive.state()


def test_a_stalled_policy_explores_with_uniform_episodes_it_does_not_learn_from(space):
    torch.set_num_threads(1)
    s = PolicySearch(space, 2, FunctionReward(planted), SearchConfig(batch=32, learn=True, hidden=32, layers=2,
                                                                    min_new_fraction=1.1, max_explore=0.5), seed=0)
    learned: list[int] = []
    real_learn = s._learn
    s._learn = lambda eps, *a: (learned.append(len(eps)), real_learn(eps, *a))  # type: ignore[method-assign]
    s.run(max_updates=4)
    # min_new_fraction above 1 marks every batch as stalled: the uniform share rises 0, .25, .5, .5
    assert [c["explore"] for c in s.curve] == [0.0, 0.25, 0.5, 0.5]
    assert learned[0] <= 32 and all(n <= 32 - round(e * 32) for n, e in zip(learned, [c["explore"] for c in s.curve], strict=True))
    assert s.state()["explore"] == 0.5
