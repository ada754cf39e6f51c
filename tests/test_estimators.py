import json

import numpy as np
import pytest
from known_games import glove, planted_pair, weighted_majority

from surrogateshap import TabularGame, TreeSurrogate, all_coalitions, estimate
from surrogateshap.games import CachedGame, FunctionGame, MoebiusGame

FAST = {"max_depth": 4, "n_estimators": 150, "learning_rate": 0.1, "reg_alpha": 0}
SMALL_GRID = {"max_depth": [2, 4], "n_estimators": [30, 120], "learning_rate": [0.1], "reg_alpha": [0]}


def rel_err(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


@pytest.fixture(scope="module")
def game12():
    return MoebiusGame.random(12, order=3, n_terms=25, seed=11)


@pytest.mark.parametrize(
    "method,options",
    [
        ("exact", {}),
        ("permutation", {}),
        ("kernelshap", {}),
        ("kernelshap", {"sampling": "leverage"}),
        ("surrogateshap", {"params": FAST, "n_bootstrap": 3}),
        ("surrogateshap", {"params": FAST, "n_bootstrap": 0, "adjust": "msr", "cv": 3}),
    ],
)
def test_efficiency_and_budget(game12, method, options):
    counted = CachedGame(game12)
    att = estimate(counted, method, budget=200, seed=1, **options)
    assert att.values.sum() == pytest.approx(att.v_full - att.v_empty, abs=1e-9)
    assert att.n_evaluations == counted.n_evaluations
    assert att.n_evaluations <= (2**12 if method == "exact" else 200)
    assert att.method == method
    if method != "exact":
        assert att.std is not None and att.std.shape == (12,) and np.all(att.std >= 0)


def test_loo_is_the_marginal_at_the_full_coalition():
    game, _ = weighted_majority()
    att = estimate(game, "loo")
    # removing player 0 from {0,1,2,3} leaves weight 3 >= quota: no player is pivotal
    np.testing.assert_allclose(att.values, [0, 0, 0, 0])
    g, *_ = planted_pair(n=5, i=0, j=3, strength=2.0)
    att = estimate(g, "loo")
    full = g(np.ones((1, 5), bool))[0]
    drop = np.ones((5, 5), bool) & ~np.eye(5, dtype=bool)
    np.testing.assert_allclose(att.values, full - g(drop))
    assert att.n_evaluations == 7


@pytest.mark.parametrize("sampling", ["kernel", "leverage"])
@pytest.mark.parametrize("paired", [True, False])
def test_kernelshap_is_exact_at_full_budget(sampling, paired):
    game = MoebiusGame.random(8, order=3, n_terms=12, seed=4)
    att = estimate(game, "kernelshap", budget=2**8, sampling=sampling, paired=paired, n_bootstrap=0)
    np.testing.assert_allclose(att.values, game.shapley_values(), atol=1e-9)


def test_small_hand_games_recovered_by_kernelshap_and_permutation():
    for game, phi in (glove(), weighted_majority()):
        np.testing.assert_allclose(estimate(game, "kernelshap", budget=2**game.n_players).values, phi, atol=1e-9)
        perm = estimate(game, "permutation", budget=2**game.n_players, max_permutations=4000)
        np.testing.assert_allclose(perm.values, phi, atol=0.05)


def test_symmetry_and_dummy_within_std():
    # players 0 and 1 symmetric, player 5 a dummy
    w = np.array([1.0, 1.0, 0.5, -0.3, 0.8, 0.0])
    game = FunctionGame(lambda m: (m @ w) ** 2 + 1.5 * (m[:, 0] & m[:, 2]) + 1.5 * (m[:, 1] & m[:, 2]), 6)
    exact = estimate(game, "exact")
    assert exact.values[0] == pytest.approx(exact.values[1], abs=1e-12)
    assert exact.values[5] == pytest.approx(0.0, abs=1e-12)
    for method, options in [
        ("permutation", {}),
        ("kernelshap", {}),
        ("surrogateshap", {"params": FAST, "n_bootstrap": 10}),
    ]:
        att = estimate(game, method, budget=40, seed=3, **options)
        spread = 4 * np.hypot(att.std[0], att.std[1]) + 1e-9
        assert abs(att.values[0] - att.values[1]) <= spread, method
        assert abs(att.values[5]) <= 4 * att.std[5] + 0.05 * np.abs(exact.values).max(), method


def test_every_method_converges_to_exact(game12):
    exact = estimate(game12, "exact").values
    budgets = (64, 512, 4096)
    for method, options, final_tol in [
        ("kernelshap", {"n_bootstrap": 0}, 1e-9),
        ("kernelshap", {"sampling": "leverage", "n_bootstrap": 0}, 1e-9),
        ("permutation", {}, 0.05),
        # a tree ensemble with row subsampling does not interpolate: it converges to within its fit
        ("surrogateshap", {"params": FAST, "n_bootstrap": 0}, 0.04),
        ("surrogateshap", {"params": FAST, "n_bootstrap": 0, "adjust": "msr", "cv": 3}, 0.04),
    ]:
        errors = [
            np.median([rel_err(estimate(game12, method, budget=b, seed=s, **options).values, exact) for s in (0, 1)])
            for b in budgets
        ]
        assert errors[-1] < errors[0], (method, options, errors)
        assert errors[-1] <= final_tol, (method, options, errors)


def assert_surrogate_is_exact_on_its_enumeration(att, n):
    """The surrogate's values and interactions equal exact enumeration of its own predictions; its
    path decomposition reproduces the model and its Moebius coefficients rebuild it."""
    sur = att.surrogate
    table = sur.predict(all_coalitions(n))
    enum = estimate(TabularGame(all_coalitions(n), table), "exact")
    scale = np.abs(table).max()
    np.testing.assert_allclose(sur.shap_values_, enum.values, atol=1e-5 * scale)
    off = ~np.eye(n, dtype=bool)
    np.testing.assert_allclose(sur.interactions_[off], enum.interactions[off], atol=1e-5 * scale)
    np.testing.assert_allclose(sur.tree_game_(all_coalitions(n)), table, atol=1e-5 * scale)
    terms, coefs = sur.moebius(max_order=n)
    contains = ~(terms[None] & ~all_coalitions(n)[:, None]).any(-1)
    np.testing.assert_allclose(contains @ coefs, table, atol=1e-5 * scale)


def test_surrogate_values_equal_enumeration_of_the_surrogate():
    n = 10
    game = MoebiusGame.random(n, order=3, n_terms=20, seed=8)
    att = estimate(game, "surrogateshap", budget=300, seed=0, params=FAST, n_bootstrap=0, adjust=None)
    assert_surrogate_is_exact_on_its_enumeration(att, n)
    # without adjustment the attribution is the surrogate's values plus one equal efficiency shift
    shift = att.values - att.surrogate.shap_values_
    np.testing.assert_allclose(shift, shift.mean(), atol=1e-9)
    assert shift.mean() == pytest.approx(att.diagnostics["efficiency_shift"])
    np.testing.assert_allclose(np.diag(att.interactions), att.values)


def test_surrogate_grid_search_reports_cross_validation():
    game = MoebiusGame.random(10, order=2, n_terms=10, seed=9)
    att = estimate(game, "surrogateshap", budget=150, seed=2, param_grid=SMALL_GRID, cv=3, n_bootstrap=0)
    assert att.diagnostics["best_params"]["max_depth"] in (2, 4)
    assert att.diagnostics["best_params"]["n_estimators"] in (30, 120)
    assert 0.5 < att.diagnostics["cv_r2"] <= 1.0
    assert 0.5 < att.diagnostics["cv_spearman"] <= 1.0
    oof = att.surrogate.cv_predictions_
    assert np.isnan(oof[:2]).all() and np.isfinite(oof[2:]).all()


def test_msr_correction_is_exact_when_every_coalition_is_seen():
    from surrogateshap.estimators.surrogate_shap import msr_residual_shapley

    game = MoebiusGame.random(7, order=3, n_terms=10, seed=1)
    masks = all_coalitions(7)
    values = game(masks)
    phi = msr_residual_shapley(masks[1:-1], values[1:-1], values[0], values[-1])
    np.testing.assert_allclose(phi, game.shapley_values(), atol=1e-12)


def test_msr_residual_variance_matches_the_spread_of_the_estimate():
    from surrogateshap.coalitions import sample_coalitions
    from surrogateshap.estimators.surrogate_shap import msr_residual_shapley, msr_residual_variance

    masks = sample_coalitions(8, 200, "shapley", seed=3, paired=True).masks
    rng = np.random.default_rng(4)
    draws, predicted = [], []
    for _ in range(2000):  # residuals of a game the surrogate got right: pure noise, sd 2
        residuals = rng.normal(0.0, 2.0, masks.shape[0])
        draws.append(msr_residual_shapley(masks, residuals, 0.0, 0.0))
        predicted.append(msr_residual_variance(masks, residuals))
    np.testing.assert_allclose(np.var(draws, axis=0), np.mean(predicted, axis=0), rtol=0.12)


def test_the_shrunk_adjustment_corrects_a_surrogate_that_trees_fit_badly():
    # a smooth concave game (like FID in the mixture weights): piecewise-constant trees are biased on it
    n = 12
    weights = np.random.default_rng(0).uniform(0.2, 2.0, n)
    game = FunctionGame(lambda masks: np.sqrt(np.asarray(masks, float) @ weights), n)
    exact = estimate(game, "exact", interactions=False).values
    for seed in range(3):
        plain = estimate(game, "surrogateshap", budget=512, seed=seed, adjust=None)
        shrunk = estimate(game, "surrogateshap", budget=512, seed=seed)
        assert shrunk.diagnostics["adjust"] == "shrunk" and 0.0 < shrunk.diagnostics["shrinkage"] <= 1.0
        assert rel_err(shrunk.values, exact) < 0.7 * rel_err(plain.values, exact)
        assert shrunk.values.sum() == pytest.approx(shrunk.v_full - shrunk.v_empty)
        assert (shrunk.std > 0).all()
        np.testing.assert_allclose(np.diag(shrunk.interactions), shrunk.values)


def test_the_shrunk_adjustment_is_the_bagged_values_plus_the_shrunk_correction(game12):
    from surrogateshap.estimators.surrogate_shap import msr_residual_shapley

    att = estimate(game12, "surrogateshap", budget=200, seed=1)
    sur = att.surrogate
    masks, values = sur.train_masks_, sur.train_values_
    held = sur.fold_ >= 0
    fold_mean = np.mean([g.shapley_values() for g in sur.fold_game_], axis=0)
    anchors = values[:2] - np.mean([g(masks[:2]) for g in sur.fold_game_], axis=0)
    correction = msr_residual_shapley(masks[held], values[held] - sur.cv_predictions_[held], *anchors)
    expected = 0.5 * (sur.shap_values_ + fold_mean) + att.diagnostics["shrinkage"] * (correction - correction.mean())
    expected += (att.v_full - att.v_empty - expected.sum()) / expected.size
    np.testing.assert_allclose(att.values, expected, atol=1e-9)
    unadjusted = estimate(game12, "surrogateshap", budget=200, seed=1, adjust=None)
    np.testing.assert_allclose(att.diagnostics["values_unadjusted"], unadjusted.values, atol=1e-9)
    boot = estimate(game12, "surrogateshap", budget=200, seed=1, std="bootstrap", n_bootstrap=3)
    np.testing.assert_allclose(boot.values, att.values, atol=1e-12)  # the same values, refitted errors
    assert (boot.std > 0).all() and not np.allclose(boot.std, att.std)
    assert estimate(game12, "surrogateshap", budget=200, seed=1, cv=0, params=FAST,
                    std=None).diagnostics["adjust"] is None  # "auto" without folds: no adjustment


def test_interactions_recover_a_planted_pair():
    game, phi, inter = planted_pair(n=6, i=1, j=4, strength=3.0)
    att = estimate(game, "surrogateshap", budget=64, seed=0, params=FAST, n_bootstrap=0)
    off = att.interactions - np.diag(np.diag(att.interactions))
    assert np.unravel_index(np.abs(off).argmax(), off.shape) in ((1, 4), (4, 1))
    assert off[1, 4] == pytest.approx(3.0, rel=0.15)


def test_attribution_frame_and_json(tmp_path, game12):
    att = estimate(game12, "kernelshap", budget=100)
    frame = att.to_frame()
    assert list(frame.columns) == ["value", "std", "rank"]
    assert frame["rank"].min() == 1 and frame.loc[frame["value"].idxmax(), "rank"] == 1
    att.to_json(tmp_path / "a.json")
    data = json.loads((tmp_path / "a.json").read_text())
    assert data["method"] == "kernelshap" and len(data["values"]) == 12
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temporary file left behind


def test_linear_base_surrogate_is_exact_on_its_own_enumeration():
    n = 9
    game = MoebiusGame.random(n, order=3, n_terms=15, seed=12)
    att = estimate(game, "surrogateshap", budget=200, seed=1, params=FAST, n_bootstrap=2, base="linear")
    assert att.surrogate.linear_ is not None and att.surrogate.model_ is not None
    assert_surrogate_is_exact_on_its_enumeration(att, n)


def test_linear_base_without_trees_is_kernelshap_on_the_same_coalitions(game12):
    no_trees = dict(FAST, n_estimators=0)
    sur = estimate(game12, "surrogateshap", budget=150, seed=4, paired=True, params=no_trees, n_bootstrap=0,
                   base="linear", adjust=None)
    kernel = estimate(game12, "kernelshap", budget=150, seed=4, n_bootstrap=0)
    np.testing.assert_allclose(sur.values, kernel.values, atol=1e-10)
    assert sur.surrogate.model_ is None


def test_linear_base_grid_considers_the_linear_model_alone():
    w = np.random.default_rng(5).normal(size=10)
    additive = FunctionGame(lambda m: m @ w, 10)
    att = estimate(additive, "surrogateshap", budget=120, seed=0, param_grid=SMALL_GRID, cv=3, n_bootstrap=0,
                   base="linear")
    assert att.diagnostics["best_params"]["n_estimators"] == 0  # trees only add noise to an additive game
    np.testing.assert_allclose(att.values, w, atol=1e-9)


# ----------------------------------------------------------------------------- estimators as classes
def test_every_method_is_a_registered_class_with_its_settings_as_parameters():
    from surrogateshap.estimators import ESTIMATORS, METHODS, Estimator, make_estimator

    assert set(METHODS) == {"exact", "kernelshap", "loo", "permutation", "surrogateshap"}
    for name, cls in ESTIMATORS.items():
        assert issubclass(cls, Estimator) and cls.name == name
        est = make_estimator(name)
        assert set(est.get_params()) == set(cls.param_names())
    with pytest.raises(ValueError, match=r"does not take option\(s\) \['depth'\]; it accepts"):
        make_estimator("surrogateshap", depth=3)


def test_a_new_estimator_is_one_subclass_and_estimate_accepts_its_name():
    from surrogateshap.estimators import ESTIMATORS, Attribution, Estimator

    class HalfAndHalf(Estimator):
        """Splits v(N) - v(empty) equally (a test estimator)."""

        name = "test_equal_split"

        def __init__(self, scale: float = 1.0) -> None:
            self.scale = scale

        def _estimate(self, game):
            v = game(np.array([[False] * game.n_players, [True] * game.n_players]))
            share = np.full(game.n_players, (v[1] - v[0]) / game.n_players) * self.scale
            return Attribution(share, float(v[0]), float(v[1]), self.name, 2)

    try:
        att = estimate(FunctionGame(lambda m: m.sum(axis=1).astype(float), 4), "test_equal_split")
        np.testing.assert_allclose(att.values, 1.0)
    finally:
        ESTIMATORS.pop("test_equal_split")


def test_budget_and_counts_accept_numpy_integers_and_refuse_floats(game12):
    att = estimate(game12, "kernelshap", budget=np.int64(40), seed=np.int32(1), n_bootstrap=np.int64(2))
    assert att.n_evaluations <= 40
    for bad in (40.0, 40.5, "40", True):
        with pytest.raises(ValueError, match="budget must be an integer of at least 2"):
            estimate(game12, "kernelshap", budget=bad)
    with pytest.raises(ValueError, match="n_bootstrap must be an integer of at least 0"):
        estimate(game12, "kernelshap", budget=40, n_bootstrap=2.0)


def test_tree_surrogate_is_a_scikit_learn_regressor():
    from sklearn.base import clone
    from sklearn.model_selection import cross_val_score

    from surrogateshap.coalitions import all_coalitions

    masks = all_coalitions(6)
    values = masks @ np.arange(1.0, 7.0)
    surrogate = TreeSurrogate(params={"max_depth": 2, "n_estimators": 60, "learning_rate": 0.3}, cv=0, seed=4)
    copy = clone(surrogate)
    assert copy.get_params() == surrogate.get_params() and not hasattr(copy, "model_")
    copy.set_params(seed=5)
    assert copy.seed == 5 and surrogate.seed == 4
    # the empty and the full coalition must stay in every training fold: put them in every split
    anchors, rest = np.array([0, len(masks) - 1]), np.arange(1, len(masks) - 1)
    folds = [(np.concatenate([anchors, rest[rest % 3 != k]]), rest[rest % 3 == k]) for k in range(3)]
    scores = cross_val_score(surrogate, masks, values, cv=folds)
    assert scores.min() > 0.5


def test_estimator_settings_are_checked_when_made_and_hashable():
    from surrogateshap.attribution import EstimatorSettings

    settings = EstimatorSettings(method="exact", options={"interactions": False})
    assert hash(settings) == hash(EstimatorSettings(method="exact", options={"interactions": True}))
    assert settings != EstimatorSettings(method="exact", options={"interactions": True})
    assert settings.resolved_budget(10) is None and EstimatorSettings().resolved_budget(5) == 32
    with pytest.raises(ValueError, match="seed must be an integer from 0 to"):
        EstimatorSettings(method="exact", seed=-1)  # exact takes no seed, but the held-out draw does
    with pytest.raises(ValueError, match="kernelshap sampling must be one of"):
        EstimatorSettings(method="kernelshap", options={"sampling": "lavarage"})


def test_kernelshap_linearized_errors_cover_the_truth_like_the_bootstrap():
    game = MoebiusGame.random(12, 3, 30, seed=101)
    exact = game.shapley_values()
    cover = {"linearized": 0, "bootstrap": 0}
    for seed in range(12):
        for std in cover:
            att = estimate(game, "kernelshap", budget=96, seed=seed, std=std, n_bootstrap=60)
            cover[std] += int((np.abs(att.values - exact) <= 2 * att.std).sum())
    total = 12 * game.n_players
    assert cover["linearized"] / total >= 0.88 and cover["bootstrap"] / total >= 0.88, cover
    # the same size as the bootstrap's at a larger budget, where both are close to first order
    lin = estimate(game, "kernelshap", budget=512, seed=3)
    boot = estimate(game, "kernelshap", budget=512, seed=3, std="bootstrap", n_bootstrap=400)
    np.testing.assert_allclose(lin.std, boot.std, rtol=0.35)
    assert estimate(game, "kernelshap", budget=96, std=None).std is None
    with pytest.raises(ValueError, match="kernelshap std must be one of"):
        estimate(game, "kernelshap", budget=96, std="jackknife")


def test_interactions_only_when_asked_for_at_many_players():
    from surrogateshap.estimators.surrogate_shap import INTERACTIONS_UP_TO

    n = INTERACTIONS_UP_TO + 20
    weights = np.linspace(-1.0, 1.0, n)
    game = FunctionGame(lambda masks: masks @ weights, n)
    fast = {"params": {"max_depth": 2, "n_estimators": 30, "learning_rate": 0.3}, "cv": 0, "std": "bootstrap",
            "n_bootstrap": 2}
    att = estimate(game, "surrogateshap", budget=200, **fast)
    assert att.interactions is None and att.std is not None
    asked = estimate(game, "surrogateshap", budget=200, interactions=True, **fast)
    assert asked.interactions.shape == (n, n)
    np.testing.assert_allclose(np.diag(asked.interactions), asked.values)
    np.testing.assert_allclose(asked.values, att.values)
    # the surrogate's own game agrees with its booster on many coalitions (the chunked path evaluation)
    masks = np.random.default_rng(0).random((300, n)) < 0.5
    np.testing.assert_allclose(asked.surrogate.tree_game_(masks), asked.surrogate.predict(masks), rtol=1e-5,
                               atol=1e-5)


def test_early_stopping_scores_every_tree_count_on_the_pooled_out_of_fold_error(game12):
    """The lockstep boosting equals separate fits per fold; it stops ``patience`` trees past the best count."""
    import xgboost as xgb

    from surrogateshap.coalitions import sample_coalitions
    from surrogateshap.estimators.surrogate import BASE_PARAMS

    sample = sample_coalitions(12, 150, "shapley", seed=3)
    values = game12(sample.masks)
    setting = {"max_depth": 2, "learning_rate": 0.3}
    surrogate = TreeSurrogate(param_grid={k: [v] for k, v in setting.items()}, cv=3, max_trees=80, patience=6,
                              interactions=False).fit(sample.masks, values)
    best = surrogate.best_params_["n_estimators"]
    x = sample.masks.astype(np.float32)
    held = surrogate.fold_ >= 0
    curve = np.zeros(81)
    for fold in range(3):
        train, test = surrogate.fold_ != fold, surrogate.fold_ == fold
        model = xgb.XGBRegressor(**{**BASE_PARAMS, **setting, "n_estimators": 80, "random_state": 0})
        model.fit(x[train], values[train])
        # the fold's model is the one a separate fit gives (row subsamples seeded per tree)
        np.testing.assert_allclose(surrogate.fold_game_[fold](sample.masks),
                                   model.predict(x, iteration_range=(0, best)), rtol=1e-5, atol=1e-5)
        for t in range(1, 81):
            curve[t] += ((model.predict(x[test], iteration_range=(0, t)) - values[test]) ** 2).sum()
    curve = curve[1:] / held.sum()
    stop = surrogate.cv_results_[0]["trees_boosted"]
    assert stop == min(80, best + 6)
    assert best == 1 + int(np.argmin(curve[:stop]))
    assert surrogate.cv_mse_ == pytest.approx(curve[best - 1], rel=1e-6)
    np.testing.assert_allclose(surrogate.cv_predictions_[held], np.nan_to_num(surrogate.cv_predictions_)[held])


def test_the_base_is_chosen_by_cross_validation(game12):
    """base='auto' takes the candidate (plain or linear base, any depth) of lowest out-of-fold error."""
    from surrogateshap.coalitions import sample_coalitions

    grid = {"max_depth": [2, 3], "learning_rate": [0.3]}
    sample = sample_coalitions(12, 200, "shapley", seed=1, paired=True)
    additive = sample.masks @ np.linspace(-1, 2, 12)
    for values in (additive, game12(sample.masks)):
        auto = TreeSurrogate(param_grid=grid, cv=3, base="auto", max_trees=60, interactions=False).fit(
            sample.masks, values)
        scores = {(r["base"], r["params"]["max_depth"]): r["mse"] for r in auto.cv_results_}
        assert len(scores) == 4 and auto.cv_mse_ == min(scores.values())
        assert (auto.base_, auto.best_params_["max_depth"]) == min(scores, key=scores.get)
        alone = TreeSurrogate(param_grid=grid, cv=3, base=auto.base_, max_trees=60, interactions=False).fit(
            sample.masks, values)
        np.testing.assert_allclose(auto.shap_values_, alone.shap_values_)
    # an additive game: the linear base alone, no trees needed
    auto = TreeSurrogate(param_grid=grid, cv=3, base="auto", max_trees=60, interactions=False).fit(
        sample.masks, additive)
    assert auto.base_ == "linear"
    np.testing.assert_allclose(auto.shap_values_, np.linspace(-1, 2, 12), atol=1e-3)


def test_surrogateshap_fold_standard_errors_cover_the_truth():
    """The delete-a-fold jackknife: 2 std covers most exact values on a game of order 3 (no refit)."""
    game = MoebiusGame.random(12, 3, 30, seed=101)
    exact = game.shapley_values()
    covered = 0
    for seed in range(8):
        att = estimate(game, "surrogateshap", budget=128, seed=seed)
        assert att.diagnostics["std"] == "folds"
        covered += int((np.abs(att.values - exact) <= 2 * att.std).sum())
    assert covered / (8 * 12) >= 0.8, covered
    with pytest.raises(ValueError, match="std='folds' reads the standard errors off the cross-validation folds"):
        estimate(game, "surrogateshap", budget=64, cv=0, params=FAST)
    with pytest.raises(ValueError, match="surrogateshap std must be one of"):
        estimate(game, "surrogateshap", budget=64, std="jackknife")


def test_permutation_ends_for_a_budget_far_beyond_the_game():
    """A budget of 10**9 on 4 players: at most 2**4 draws, values exact for an additive game."""
    game = MoebiusGame(np.eye(4, dtype=bool), np.array([1.0, 2.0, 3.0, 4.0]))
    att = estimate(game, "permutation", budget=10**9, seed=0)
    assert att.diagnostics["n_permutations"] <= 2 * 2**4 and att.n_evaluations <= 2**4
    np.testing.assert_allclose(att.values, [1.0, 2.0, 3.0, 4.0])


def test_the_linear_bases_ridge_steadies_the_fit_where_coalitions_barely_outnumber_players():
    """Paired sampling at budget 2n holds about n independent pairs: the plain constrained fit is near-singular
    there and its error explodes; the tiny relative ridge (LINEAR_RIDGE) keeps it in range."""
    from surrogateshap.coalitions import sample_coalitions
    from surrogateshap.estimators.linear import fit_linear_base
    from surrogateshap.estimators.surrogate import LINEAR_RIDGE

    n, plain, ridged = 100, [], []
    for seed in range(4):
        rng = np.random.default_rng(seed)
        terms, coefs = [np.eye(n, dtype=bool)], [rng.normal(size=n)]
        for order, count in ((2, 300), (3, 100)):
            for _ in range(count):
                mask = np.zeros((1, n), dtype=bool)
                mask[0, rng.choice(n, size=order, replace=False)] = True
                terms.append(mask)
                coefs.append(rng.normal(size=1) * 2.0 / order)
        game = MoebiusGame(np.concatenate(terms), np.concatenate(coefs))
        exact = game.shapley_values()
        sample = sample_coalitions(n, 2 * n, "shapley", seed=seed, paired=True)
        values = game(sample.masks)
        for ridge, errors in ((0.0, plain), (LINEAR_RIDGE, ridged)):
            phi = fit_linear_base(sample.masks, values, ridge)[1]
            assert np.isclose(phi.sum(), exact.sum())  # the constraint holds either way
            errors.append(np.linalg.norm(phi - exact) / np.linalg.norm(exact))
    assert all(r < p for r, p in zip(ridged, plain)), (ridged, plain)
    assert np.median(ridged) < 0.6 < 1.0 < np.median(plain), (ridged, plain)


def test_the_default_sampler_draws_sizes_uniformly_from_50_players():
    """sampler='auto': the Shapley kernel's sizes for few players, uniform sizes ('leverage') for many; the one
    used is recorded, and an explicit sampler is kept whatever n."""
    from surrogateshap.estimators.surrogate_shap import LEVERAGE_FROM_PLAYERS

    for n, expected in ((LEVERAGE_FROM_PLAYERS - 1, "shapley"), (LEVERAGE_FROM_PLAYERS, "leverage")):
        game = MoebiusGame(np.eye(n, dtype=bool), np.linspace(-1, 1, n))
        att = estimate(game, "surrogateshap", budget=4 * n, seed=0, cv=2, interactions=False)
        assert att.diagnostics["sampler"] == expected
        explicit = estimate(game, "surrogateshap", budget=4 * n, seed=0, sampler="uniform_size", cv=2,
                            interactions=False)
        assert explicit.diagnostics["sampler"] == "uniform_size"
    with pytest.raises(ValueError, match="choose 'auto' or one of"):
        estimate(MoebiusGame(np.eye(3, dtype=bool), np.ones(3)), "surrogateshap", sampler="kernel")


def test_the_default_grid_adds_deep_trees_once_the_sample_holds_enough_coalitions_per_player():
    """Depth-6 candidates from DEEP_FROM coalitions per player on; CV takes them where the game needs them."""
    from surrogateshap.estimators.surrogate import DEEP_DEPTH, DEEP_FROM, DEFAULT_GRID

    n = 12
    terms = np.zeros((3, n), bool)
    terms[0, :6] = True  # a 6-way interaction: depth-3 trees cannot split on all six players at once
    terms[1, 6:9] = terms[2, 9:] = True
    game = MoebiusGame(terms, np.array([4.0, 1.0, -1.0]))
    for rows, depths in ((DEEP_FROM * n - 40, {3}), (DEEP_FROM * n, {3, DEEP_DEPTH})):
        att = estimate(game, budget=rows, seed=0, std=None)
        assert {r["params"]["max_depth"] for r in att.surrogate.cv_results_} == depths
    assert att.surrogate.best_params_["max_depth"] == DEEP_DEPTH
    shallow = estimate(game, budget=DEEP_FROM * n, seed=0, std=None, param_grid=DEFAULT_GRID)
    exact = game.shapley_values()
    assert np.linalg.norm(att.values - exact) < 0.5 * np.linalg.norm(shallow.values - exact)
