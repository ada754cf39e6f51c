import numpy as np
import pytest

from surrogateshap import CachedGame, FunctionGame, TabularGame, estimate
from surrogateshap.games import evaluate


def good(m):
    return m.sum(axis=1).astype(float)


def test_wrong_mask_shape_and_dtype():
    game = FunctionGame(good, 4)
    with pytest.raises(ValueError, match="columns"):
        evaluate(game, np.zeros((2, 3), bool))
    with pytest.raises(ValueError, match="dtype bool"):
        evaluate(game, np.zeros((2, 4), int))
    with pytest.raises(ValueError, match="dimension"):
        evaluate(game, np.zeros(4, bool))
    with pytest.raises(ValueError, match="numpy array"):
        evaluate(game, [[True, False, True, False]])
    with pytest.raises(ValueError, match="dtype bool"):
        CachedGame(game)(np.zeros((1, 4), np.float32))


@pytest.mark.parametrize("budget", [1, 0, -1])
def test_budget_below_two(budget):
    with pytest.raises(ValueError, match="budget must be an integer of at least 2"):
        estimate(FunctionGame(good, 4), "kernelshap", budget=budget)


def test_game_returning_nan_or_wrong_length():
    def nan_game(m):
        out = m.sum(1).astype(float)
        out[m.sum(1) == 2] = np.nan
        return out

    with pytest.raises(ValueError, match="not a finite number"):
        estimate(FunctionGame(nan_game, 4), "exact")
    with pytest.raises(ValueError, match="one float per coalition"):
        estimate(FunctionGame(lambda m: np.zeros(3), 4), "permutation", budget=20)


def test_missing_n_players():
    with pytest.raises(ValueError, match="n_players"):
        estimate(good, "exact")


def test_unknown_method_and_option():
    game = FunctionGame(good, 4)
    with pytest.raises(ValueError, match="unknown method"):
        estimate(game, "banzhaf")
    with pytest.raises(ValueError, match="does not take"):
        estimate(game, "kernelshap", budget=10, adjust="msr")


def test_budget_too_small_for_a_permutation():
    with pytest.raises(ValueError, match="too small"):
        estimate(FunctionGame(good, 8), "permutation", budget=5)


def test_tabular_and_cached_games():
    masks = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], bool)
    table = TabularGame(masks, [0.0, 1.0, 2.0, 4.0])
    att = estimate(table, "exact")
    np.testing.assert_allclose(att.values, [1.5, 2.5])
    partial = TabularGame(masks[[0, 3]], [0.0, 4.0])
    with pytest.raises(ValueError, match="no value for the coalition of players \\[0\\]"):
        partial(masks[[1]])
    calls = []
    cached = CachedGame(FunctionGame(lambda m: calls.append(len(m)) or good(m), 2))
    cached(masks[[1, 1, 2]])
    cached(masks[[2, 3]])
    assert cached.n_evaluations == 3 and calls == [2, 1]
