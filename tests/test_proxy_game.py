"""ProxyGame: coalition values from a contributor bank match an independent numpy computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from surrogateshap.metrics.base import ContributorMetric

from surrogateshap import (
    CachedGame,
    ContributorBank,  # the public contract: top-level imports
    ProxyGame,
)
from surrogateshap.games import evaluate


class MeanScore(ContributorMetric):
    """Weighted mean of a per-sample scalar score."""

    higher_is_better = True

    def _init_contributor_states(self, num_contributors):
        self.add_state("total", torch.zeros(num_contributors, dtype=torch.float64), dist_reduce_fx="sum")

    def _accumulate(self, data, member):
        self.total += member.T @ data.to(torch.float64).reshape(-1)

    def _compute_mixture(self, alpha, sum_w2):
        return alpha @ self.total


class Spread(ContributorMetric):
    """Trace of the weighted (biased) covariance of per-sample vectors: nonlinear in the weights."""

    higher_is_better = False

    def _init_contributor_states(self, num_contributors):
        self.add_state("total", torch.zeros(num_contributors, 0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("sq", torch.zeros(num_contributors, dtype=torch.float64), dist_reduce_fx="sum")

    def _accumulate(self, data, member):
        x = data.to(torch.float64).reshape(data.shape[0], -1)
        contrib = member.T @ x
        self.total = contrib if self.total.shape[1] == 0 else self.total + contrib
        self.sq += member.T @ (x * x).sum(dim=1)

    def _compute_mixture(self, alpha, sum_w2):
        mean = alpha @ self.total
        return alpha @ self.sq - (mean * mean).sum(dim=1)


IDS = ["c", "a", "e", "b", "d"]
N_EX = {"c": 30, "a": 10, "e": 5, "b": 50, "d": 20}
COUNTS = {"c": 6, "a": 3, "e": 4, "b": 5, "d": 7}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    owners = np.array([cid for cid in IDS for _ in range(COUNTS[cid])])
    rng.shuffle(owners)
    n = len(owners)
    return {
        "owners": owners,
        "score": rng.normal(size=n) + np.array([IDS.index(o) for o in owners]),
        "feat": rng.normal(size=(n, 4)).astype(np.float32)
        * (1 + np.array([IDS.index(o) for o in owners]))[:, None],
    }


@pytest.fixture()
def bank(data):
    return ContributorBank({"score": data["score"], "feat": data["feat"]}, data["owners"], N_EX)


def sample_weights(owners, mask, weights):
    """Independent per-sample mixture weights: contributor share spread evenly over its samples."""
    share = {cid: (weights[cid] if mask[IDS.index(cid)] else 0.0) for cid in IDS}
    total = sum(share.values())
    return np.array([share[o] / total / COUNTS[o] for o in owners])


def numpy_mean_score(data, mask, weights=N_EX):
    w = sample_weights(data["owners"], mask, weights)
    return float(w @ data["score"])


def numpy_spread(data, mask, weights=N_EX):
    w = sample_weights(data["owners"], mask, weights)
    x = data["feat"].astype(np.float64)
    mean = w @ x
    return float(w @ (x * x).sum(axis=1) - mean @ mean)


def random_masks(k, n=5, seed=1):
    rng = np.random.default_rng(seed)
    masks = rng.random((k, n)) < 0.5
    masks[np.arange(k), rng.integers(0, n, size=k)] = True  # no empty row but the first
    masks[0] = False
    masks[1] = True
    return masks


def test_values_match_numpy_for_random_coalitions(data, bank):
    masks = random_masks(40)
    for metric, reference in [(MeanScore("score"), numpy_mean_score), (Spread("feat"), numpy_spread)]:
        game = ProxyGame(bank, metric, v_empty=-7.5, batch_size=7)
        assert game.n_players == 5 and game.contributor_ids == IDS
        assert metric.update_count == 0  # fed lazily
        values = game(masks)
        assert values.dtype == np.float64 and values.shape == (40,)
        assert values[0] == -7.5
        expected = [reference(data, m) for m in masks[1:]]
        np.testing.assert_allclose(values[1:], expected, rtol=1e-10, atol=1e-10)
        fed = metric.update_count
        game(masks[:3])
        game.prepare()
        assert metric.update_count == fed  # the bank is fed once
        # the metric says how much of the bank each column holds: here, samples per contributor
        np.testing.assert_array_equal(metric.mass().numpy(), np.bincount(bank.contributor_index, minlength=5))


def test_players_follow_bank_contributor_ids(data, bank):
    game = ProxyGame(bank, MeanScore("score"), v_empty=0.0)
    for j, cid in enumerate(IDS):
        mask = np.zeros((1, 5), dtype=bool)
        mask[0, j] = True
        own = data["score"][data["owners"] == cid].mean()
        np.testing.assert_allclose(game(mask), [own])


def test_custom_weights_array_and_mapping(data, bank):
    masks = random_masks(12, seed=3)
    custom = {"c": 1.0, "a": 2.0, "e": 3.0, "b": 4.0, "d": 5.0}
    by_array = ProxyGame(bank, MeanScore("score"), 0.0, weights=[custom[c] for c in IDS])(masks)
    by_map = ProxyGame(bank, MeanScore("score"), 0.0, weights=custom)(masks)
    expected = [numpy_mean_score(data, m, custom) for m in masks[1:]]
    np.testing.assert_allclose(by_array[1:], expected, rtol=1e-12)
    np.testing.assert_allclose(by_map, by_array, rtol=1e-12)


def test_v_empty_from_a_base_model_bank(bank):
    rng = np.random.default_rng(5)
    base_score = rng.normal(size=9)
    base_feat = rng.normal(size=(9, 4)).astype(np.float32)
    base = ContributorBank({"score": base_score, "feat": base_feat}, ["base"] * 9)
    empty = np.zeros((2, 5), dtype=bool)
    mean_game = ProxyGame(bank, MeanScore("score"), v_empty=base)
    np.testing.assert_allclose(mean_game(empty), [base_score.mean()] * 2, rtol=1e-12)
    spread_game = ProxyGame(bank, Spread("feat"), v_empty=base)
    x = base_feat.astype(np.float64)
    expected = (x * x).sum(axis=1).mean() - x.mean(axis=0) @ x.mean(axis=0)
    np.testing.assert_allclose(spread_game.v_empty, expected, rtol=1e-10)
    # the base bank does not disturb the game's own statistics
    full = np.ones((1, 5), dtype=bool)
    assert spread_game(full)[0] == pytest.approx(ProxyGame(bank, Spread("feat"), 0.0)(full)[0], rel=1e-12)


def test_works_under_cached_game_and_evaluate(data, bank):
    masks = random_masks(20, seed=7)
    masks = np.concatenate([masks, masks[:5]])
    game = ProxyGame(bank, MeanScore("score"), v_empty=1.25)
    cached = CachedGame(game)
    via_cache = evaluate(cached, masks)
    direct = evaluate(game, masks)
    np.testing.assert_allclose(via_cache, direct, rtol=1e-12)
    assert cached.n_evaluations == len({m.tobytes() for m in masks})


def test_multi_shares_the_bank_and_passes_higher_is_better(data, bank):
    games = ProxyGame.multi(
        bank, {"mean": MeanScore("score"), "spread": Spread("feat")}, v_empty={"mean": 0.0, "spread": 2.0}
    )
    assert set(games) == {"mean", "spread"}
    assert games["mean"].bank is games["spread"].bank
    assert games["mean"].higher_is_better is True and games["spread"].higher_is_better is False
    masks = random_masks(6, seed=11)
    assert games["spread"](masks)[0] == 2.0
    np.testing.assert_allclose(
        games["mean"](masks)[1:], [numpy_mean_score(data, m) for m in masks[1:]], rtol=1e-12
    )
    one = ProxyGame.multi(bank, {"mean": MeanScore("score")}, v_empty=3.0)
    assert one["mean"].v_empty == 3.0
    with pytest.raises(ValueError, match="spread"):
        ProxyGame.multi(bank, {"mean": MeanScore("score"), "spread": Spread("feat")}, v_empty={"mean": 0.0})


def test_contributor_without_samples_only_fails_when_needed(data):
    bank = ContributorBank({"score": data["score"]}, data["owners"], {**N_EX, "ghost": 3})
    game = ProxyGame(bank, MeanScore("score"), 0.0)
    assert game.n_players == 6
    mask = np.zeros((2, 6), dtype=bool)
    mask[:, 0] = True
    mask[1, 5] = True
    assert np.isfinite(game(mask[:1])).all()
    with pytest.raises(ValueError, match="'ghost' is in coalition 1 but has no samples"):
        game(mask)
    # the metric alone names the column; the game translates it to the contributor id
    from surrogateshap.metrics import MissingSamplesError

    with pytest.raises(MissingSamplesError, match="contributor 5 is in coalition 1") as err:
        game.metric.compute_coalitions(mask, game.weights)
    assert (err.value.coalition, err.value.column) == (1, 5)


def test_bad_inputs_raise_clear_errors(bank):
    with pytest.raises(
        ValueError, match=r"reads bank array 'inception' but the bank has \['score', 'feat'\]"
    ):
        ProxyGame(bank, MeanScore("inception"), 0.0)
    with pytest.raises(ValueError, match="one entry per contributor"):
        ProxyGame(bank, MeanScore("score"), 0.0, weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="positive"):
        ProxyGame(bank, MeanScore("score"), 0.0, weights=[1.0, 2.0, 0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="missing ids"):
        ProxyGame(bank, MeanScore("score"), 0.0, weights={"a": 1.0})
    with pytest.raises(ValueError, match="v_empty"):
        ProxyGame(bank, MeanScore("score"), "zero")
    with pytest.raises(ValueError, match="finite"):
        ProxyGame(bank, MeanScore("score"), float("nan"))
    with pytest.raises(ValueError, match="not a contributor metric"):
        ProxyGame(bank, object(), 0.0)
    with pytest.raises(ValueError, match="ContributorBank"):
        ProxyGame({"score": np.zeros(3)}, MeanScore("score"), 0.0)
    with pytest.raises(ValueError, match="batch_size"):
        ProxyGame(bank, MeanScore("score"), 0.0, batch_size=0)
    base = ContributorBank({"feat": np.zeros((3, 2), np.float32)}, ["base"] * 3)
    with pytest.raises(ValueError, match="shape"):
        ProxyGame(bank, Spread("feat"), base)
    game = ProxyGame(bank, MeanScore("score"), 0.0)
    with pytest.raises(ValueError, match="columns"):
        game(np.ones((2, 4), dtype=bool))
    with pytest.raises(ValueError, match="dtype bool"):
        game(np.ones((2, 5), dtype=int))
    used = MeanScore("score", num_contributors=5)
    used.update(torch.zeros(2), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="freshly created metric"):
        ProxyGame(bank, used, 0.0)(np.ones((1, 5), dtype=bool))


@pytest.mark.filterwarnings("ignore:The `disp` argument:DeprecationWarning")
def test_contributor_fid_matches_pooled_clean_fid():
    from cleanfid.fid import frechet_distance
    from surrogateshap.metrics import ContributorFID

    rng = np.random.default_rng(4)
    d, m = 6, 15
    ids = ["p", "q", "r", "s"]
    feats = np.concatenate([rng.normal(loc=i, scale=1 + i / 2, size=(m, d)) for i in range(4)]).astype(
        np.float32
    )
    owners = np.repeat(ids, m)
    ref = rng.normal(size=(200, d))
    mu_ref, sigma_ref = ref.mean(axis=0), np.cov(ref, rowvar=False)
    masks = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0]], dtype=bool)
    base_feats = rng.normal(size=(30, d)).astype(np.float32)
    base = ContributorBank({"inception": base_feats}, ["base"] * 30)

    def clean(x, aweights=None):
        x = x.astype(np.float64)
        mu = x.mean(axis=0) if aweights is None else aweights @ x / aweights.sum()
        return frechet_distance(mu, np.cov(x, rowvar=False, aweights=aweights), mu_ref, sigma_ref)

    # equal n_examples and sample counts: plain pooling of the coalition's features
    bank = ContributorBank({"inception": feats}, owners, dict.fromkeys(ids, 100))
    fid = ContributorFID(feature="inception", reference=(mu_ref, sigma_ref))
    game = ProxyGame(bank, fid, v_empty=base)
    assert game.higher_is_better is False
    values = game(masks)
    expected = [clean(feats[np.isin(owners, np.array(ids)[mk])]) for mk in masks[:4]]
    np.testing.assert_allclose(values[:4], expected, rtol=1e-6)
    np.testing.assert_allclose(values[4], clean(base_feats), rtol=1e-6)

    # unequal n_examples: the pooled statistics weight each sample by n_i / n_S / m_i
    n_ex = {"p": 10, "q": 40, "r": 20, "s": 30}
    bank = ContributorBank({"inception": feats}, owners, n_ex)
    values = ProxyGame(bank, ContributorFID(feature="inception", reference=(mu_ref, sigma_ref)), 0.0)(
        masks[:4]
    )
    for value, mk in zip(values, masks[:4], strict=True):
        inside = np.isin(owners, np.array(ids)[mk])
        w = np.array([n_ex[o] for o in owners[inside]], dtype=np.float64)
        np.testing.assert_allclose(value, clean(feats[inside], aweights=w), rtol=1e-6)
