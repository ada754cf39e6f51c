import numpy as np
import pytest

from surrogateshap import estimate, sample_coalitions
from surrogateshap.evaluation import counterfactual, lds, removal_mask
from surrogateshap.games import FunctionGame, MoebiusGame


def test_lds_is_one_for_an_additive_game_and_lower_with_interactions():
    w = np.random.default_rng(0).normal(size=10)
    additive = FunctionGame(lambda m: 5.0 + m @ w, 10)
    held = sample_coalitions(10, 40, "datamodel", seed=1, alpha=0.5).masks[2:]
    att = estimate(additive, "exact")
    assert lds(att, held, additive(held)) == pytest.approx(1.0)
    game = MoebiusGame.random(10, order=3, n_terms=40, seed=3, scale=3.0)
    att = estimate(game, "exact")
    score = lds(att, held, game(held))
    assert -1.0 <= score < 1.0


def test_removal_masks():
    values = np.array([0.5, 3.0, -1.0, 2.0, 0.0])
    assert removal_mask(values, 0.4, "top").tolist() == [True, False, True, False, True]
    assert removal_mask(values, 0.2, "bottom").tolist() == [True, True, False, True, True]
    assert removal_mask(values, 0.2, "top", keep=True).tolist() == [False, True, False, False, False]
    with pytest.raises(ValueError, match="fraction"):
        removal_mask(values, 1.5)


def test_counterfactual_removing_top_moves_an_additive_utility_most():
    w = np.array([5.0, 4.0, 1.0, 0.5, 0.1, 0.0, -0.1, -0.5, -1.0, -3.0])
    game = FunctionGame(lambda m: m @ w, 10)
    frame = counterfactual(estimate(game, "exact"), game, fractions=(0.1, 0.2))
    top = frame[frame.which == "top"].set_index("fraction")["change"]
    bottom = frame[frame.which == "bottom"].set_index("fraction")["change"]
    np.testing.assert_allclose(top.values, [-5.0, -9.0])
    np.testing.assert_allclose(bottom.values, [3.0, 4.0])


def test_fidelity_is_spearman_and_pearson_and_nan_when_undefined():
    from scipy.stats import pearsonr, spearmanr

    from surrogateshap.evaluation import fidelity

    x, y = [1.0, 2.0, 4.0, 3.0], [0.1, 0.3, 0.2, 0.5]
    assert fidelity(x, y) == (spearmanr(x, y).statistic, pearsonr(x, y).statistic)
    assert all(np.isnan(fidelity([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])))
    assert all(np.isnan(fidelity([1.0, 2.0], [1.0, 2.0])))
