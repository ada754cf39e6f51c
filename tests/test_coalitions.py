import math

import numpy as np
import pytest

from surrogateshap.coalitions import (
    all_coalitions,
    leave_one_out_coalitions,
    sample_coalitions,
    size_distribution,
)


def _keys(masks):
    return [row.tobytes() for row in np.packbits(masks, axis=1)]


@pytest.mark.parametrize("sampler", ["shapley", "uniform", "uniform_size", "leverage", "datamodel"])
@pytest.mark.parametrize("paired", [False, True])
def test_sample_is_distinct_anchored_and_within_budget(sampler, paired):
    sample = sample_coalitions(12, 150, sampler, seed=3, paired=paired)
    masks = sample.masks
    assert masks.dtype == bool and masks.shape[1] == 12
    assert len(sample) <= 150
    assert len(sample) >= 150 - (2 if paired else 1) or sampler == "datamodel"
    assert not masks[0].any() and masks[1].all()
    assert len(set(_keys(masks))) == len(masks)
    assert np.all(sample.inclusion_prob > 0) and np.all(sample.inclusion_prob <= 1)
    if paired:
        keys = set(_keys(masks))
        assert all(k in keys for k in _keys(~masks))


def test_same_seed_same_sample_and_different_seed_differs():
    a = sample_coalitions(15, 100, seed=7)
    b = sample_coalitions(15, 100, seed=7)
    c = sample_coalitions(15, 100, seed=8)
    assert np.array_equal(a.masks, b.masks)
    assert not np.array_equal(a.masks, c.masks)


def test_shapley_size_allocation_follows_the_kernel():
    """Sizes get budget in proportion to P(s); sizes with fewer coalitions than their share are
    enumerated completely and the surplus goes to the others in the same proportions."""
    n, budget = 16, 4002
    p = size_distribution(n, "shapley")
    expected_shape = np.array([0] + [(n - 1) / (k * (n - k)) for k in range(1, n)] + [0])
    np.testing.assert_allclose(p, expected_shape / expected_shape.sum())
    counts = np.bincount(sample_coalitions(n, budget, seed=0).masks[2:].sum(1), minlength=n + 1)
    capacity = np.array([math.comb(n, k) for k in range(n + 1)])
    full = (counts == capacity) & (p > 0)
    assert full[1] and full[2] and full[15]  # 16 and 120 coalitions: below their share
    free = ~full & (p > 0)
    ratio = counts[free] / p[free]
    np.testing.assert_allclose(ratio, ratio.mean(), atol=1.0 / p[free].min())  # +-1 coalition of rounding
    assert counts.sum() == budget - 2


def test_subsets_within_a_size_are_uniform():
    # n = 8, size 4: 70 subsets; count each player's frequency over many seeds
    counts = np.zeros(8)
    total = 0
    for seed in range(200):
        m = sample_coalitions(8, 40, "datamodel", seed=seed).masks[2:]
        counts += m.sum(0)
        total += m.shape[0]
    freq = counts / total
    np.testing.assert_allclose(freq, 0.5, atol=0.03)


def test_inclusion_probabilities_are_unbiased():
    """Horvitz-Thompson: the mean of 1[S sampled]/pi(S) over many draws is 1 for every coalition."""
    n, budget, reps = 6, 20, 3000
    totals = np.zeros(2**n)
    codes = 1 << np.arange(n)
    for seed in range(reps):
        s = sample_coalitions(n, budget, "shapley", seed=seed)
        idx = s.masks.astype(np.int64) @ codes
        totals[idx] += 1.0 / s.inclusion_prob
    ratio = totals / reps
    assert abs(ratio[0] - 1) < 1e-12 and abs(ratio[-1] - 1) < 1e-12
    np.testing.assert_allclose(ratio, 1.0, atol=0.12)


def test_full_budget_enumerates_everything():
    for paired in (False, True):
        s = sample_coalitions(7, 10_000, "shapley", seed=0, paired=paired)
        assert len(s) == 2**7
        np.testing.assert_allclose(s.inclusion_prob, 1.0)
        assert sorted(_keys(s.masks)) == sorted(_keys(all_coalitions(7)))


def test_datamodel_keeps_round_alpha_n():
    s = sample_coalitions(20, 50, "datamodel", seed=1, alpha=0.3)
    assert set(s.masks[2:].sum(1)) == {6}
    with pytest.raises(ValueError, match="alpha"):
        sample_coalitions(20, 50, "datamodel", alpha=1.2)


def test_uniform_over_subsets_has_equal_inclusion():
    s = sample_coalitions(10, 300, "uniform", seed=0)
    np.testing.assert_allclose(s.inclusion_prob[2:], s.inclusion_prob[2], rtol=0.01 + 1 / 300 * 50)


def test_leave_one_out():
    m = leave_one_out_coalitions(4)
    assert m.shape == (6, 4)
    assert m[2:].sum(1).tolist() == [3, 3, 3, 3]
    assert (~m[2:]).argmax(1).tolist() == [0, 1, 2, 3]
    s = sample_coalitions(4, 2, "loo")
    assert np.array_equal(s.masks, m)


def test_large_n_samples_quickly_and_distinctly():
    s = sample_coalitions(258, 300, seed=0, paired=True)
    assert len(set(_keys(s.masks))) == len(s) == 300
    assert math.isclose(s.inclusion_prob[0], 1.0)


@pytest.mark.parametrize("budget", [1, 0, -3, 2.5, None])
def test_bad_budget(budget):
    with pytest.raises(ValueError, match="budget"):
        sample_coalitions(5, budget)


def test_bad_sampler_and_players():
    with pytest.raises(ValueError, match="unknown sampler"):
        sample_coalitions(5, 10, "banzhaf")
    with pytest.raises(ValueError, match="players"):
        sample_coalitions(0, 10)
