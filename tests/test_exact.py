import numpy as np
import pytest
from known_games import additive, glove, planted_pair, unanimity, weighted_majority

from surrogateshap import estimate
from surrogateshap.games import FunctionGame, MoebiusGame


def test_additive():
    game, phi = additive([0.5, -1.0, 2.0, 0.0, 3.25])
    np.testing.assert_allclose(estimate(game, "exact").values, phi, atol=1e-9)


@pytest.mark.parametrize("members", [[0], [1, 3], [0, 2, 4, 5]])
def test_unanimity(members):
    game, phi = unanimity(6, members)
    np.testing.assert_allclose(estimate(game, "exact").values, phi, atol=1e-9)


def test_glove_and_weighted_majority():
    for game, phi in (glove(), weighted_majority()):
        np.testing.assert_allclose(estimate(game, "exact").values, phi, atol=1e-9)


def test_planted_interaction_values_and_index():
    game, phi, inter = planted_pair()
    att = estimate(game, "exact")
    np.testing.assert_allclose(att.values, phi, atol=1e-9)
    np.testing.assert_allclose(att.interactions, inter, atol=1e-9)


def test_third_order_moebius_game_matches_closed_form():
    game = MoebiusGame.random(9, order=3, n_terms=15, seed=2)
    att = estimate(game, "exact")
    np.testing.assert_allclose(att.values, game.shapley_values(), atol=1e-9)
    np.testing.assert_allclose(att.interactions, game.interaction_index(), atol=1e-9)


def test_axioms_efficiency_symmetry_dummy():
    # players 0 and 1 symmetric, player 4 a dummy
    w = np.array([1.0, 1.0, 0.3, -0.7, 0.0])
    game = FunctionGame(lambda m: (m @ w) ** 2 + 2.0 * (m[:, 0] | m[:, 1]), 5)
    att = estimate(game, "exact")
    assert att.values.sum() == pytest.approx(att.v_full - att.v_empty, abs=1e-12)
    assert att.values[0] == pytest.approx(att.values[1], abs=1e-12)
    assert att.values[4] == pytest.approx(0.0, abs=1e-12)
    assert att.n_evaluations == 32


def test_exact_refuses_too_many_players():
    game = FunctionGame(lambda m: m.sum(1).astype(float), 23)
    with pytest.raises(ValueError, match="n <= 22"):
        estimate(game, "exact")


def test_exact_on_18_players_is_vectorised_and_right():
    game = MoebiusGame.random(18, order=2, n_terms=10, seed=5)
    att = estimate(game, "exact", interactions=False)
    np.testing.assert_allclose(att.values, game.shapley_values(), atol=1e-9)
    assert att.interactions is None
