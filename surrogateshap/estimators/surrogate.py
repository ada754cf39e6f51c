"""The XGBoost surrogate of a game: cross-validated fit on coalition masks, exact Shapley read-out."""

from __future__ import annotations

import itertools
import threading
import warnings
from typing import Any

import numpy as np
import xgboost as xgb
from scipy.stats import spearmanr
from sklearn.base import BaseEstimator, RegressorMixin

from .linear import fit_linear_base
from .tree_game import TreeGame

PAPER_GRID: dict[str, list[Any]] = {
    "max_depth": [3, 5, 10],
    "n_estimators": [100, 300, 900],
    "learning_rate": [0.01, 0.05],
    "reg_alpha": [0, 10],
}
# The authors' code defaults (900 trees, depth 5, lr 0.05, subsample 0.8).
PAPER_DEFAULT: dict[str, Any] = {"max_depth": 5, "n_estimators": 900, "learning_rate": 0.05, "reg_alpha": 0}
# Inputs are 0/1, so two histogram bins lose nothing; one thread is fastest on a few hundred rows.
# seed_per_iteration: each tree's row subsample is drawn from (seed, tree index) alone, so the fold models,
# boosted in lockstep, are the models a separate fit on each fold would give.
BASE_PARAMS: dict[str, Any] = {"subsample": 0.8, "tree_method": "hist", "max_bin": 2, "n_jobs": 1,
                               "seed_per_iteration": True}
# Chosen by benchmarks/surrogate_selection.py (results/surrogate_selection.md): against the paper's grid
# (36 settings, 900 trees at most) it is more accurate at budgets 64-1024 and 15-28x cheaper; depth 6 or a
# learning rate of 0.1 beside it added cost and no accuracy on the study's games.
#: the grid searched by default (a grid without ``n_estimators``: the tree count by early stopping)
DEFAULT_GRID: dict[str, list[Any]] = {"max_depth": [3], "learning_rate": [0.3]}
#: the deeper trees the default grid adds once the sample holds DEEP_FROM coalitions per player
DEEP_DEPTH = 6
#: Measured with benchmarks/estimator_peers.py (2026-12-03): depth 6 beside 3 at every budget cost accuracy at
#: budgets 64-128 (geometric mean 0.232 -> 0.242), and depths 4 and 6 once the sample held 8 coalitions per leaf
#: broke the artists demo's planted findings at 40 players, budget 512 (12.8 coalitions per player;
#: tests/test_demo_artists.py). From 32 per player on, depth 6 lowers the geometric-mean error at 512
#: (0.0305 -> 0.0269) and 1024 (0.0166 -> 0.0123; 10x on the 13-feature tabular explanation, whose depth-3
#: surrogate levels off), though CV's choice is worse on two games there (cancer16 1.5x -> 2.0x the best at 1024,
#: proxy_fid16 1.3x -> 1.6x at 512); every cell below 32 per player is as it was (thresholds 8 to 32 gave the same
#: count of cells within 10% of the best; 40 or more lost the gain at 512).
DEEP_FROM = 32
#: early stopping: at most this many trees, stopped once the pooled out-of-fold error has not improved for PATIENCE
MAX_TREES = 300
#: eigenvalue floor of the linear base, relative to the mean eigenvalue
#: (:func:`~surrogateshap.estimators.linear.constrained_wls`). Without it the base blows up where the sample
#: holds about as many independent coalitions as players (budget ~ 2n with paired sampling): at n = 1,000,
#: budget 2,000, SurrogateSHAP's error fell from 1.41 to 0.25 (median of 3 seeds, benchmarks/results/scale.md).
#: Well-conditioned designs are untouched: the n = 20 benchmark and budgets 4,000-8,000 at n = 1,000 gave
#: the same values as without it.
LINEAR_RIDGE = 1e-4
#: held while shap's TreeExplainer runs with its warnings silenced (the filters are process-wide)
SHAP_LOCK = threading.Lock()
PATIENCE = 25
#: the surrogate's base: trees from a constant (None), from the Shapley-kernel linear fit, or chosen by CV
BASES = (None, "linear", "auto")


def default_grid(n_rows: int, n_players: int) -> dict[str, list[Any]]:
    """The grid cross-validation searches by default: ``DEFAULT_GRID``, plus depth ``DEEP_DEPTH`` trees
    once the rows hold ``DEEP_FROM`` coalitions per player (deeper trees need that many to pay).

    >>> default_grid(512, 40)
    {'max_depth': [3], 'learning_rate': [0.3]}
    >>> default_grid(1024, 20)
    {'max_depth': [3, 6], 'learning_rate': [0.3]}
    """
    grid = {key: list(values) for key, values in DEFAULT_GRID.items()}
    if n_rows >= DEEP_FROM * n_players:
        grid["max_depth"].append(DEEP_DEPTH)
    return grid


class TreeSurrogate(RegressorMixin, BaseEstimator):
    """Gradient-boosted trees from coalition masks to game values, with exact Shapley values.

    A scikit-learn regressor (``get_params``, ``clone``, ``score`` work) whose inputs are
    coalition masks.

    Parameters
    ----------
    params : fixed XGBoost parameters (e.g. ``PAPER_DEFAULT``); when None, the parameters are
        chosen from ``param_grid`` by K-fold cross-validation (lowest pooled out-of-fold MSE).
    param_grid : grid searched when ``params`` is None (default: :func:`default_grid`). One model per
        fold is boosted for each setting, all folds in lockstep, and the pooled out-of-fold MSE is
        read after every tree (boosting is sequential: the first ``t`` trees are the ``t``-tree
        model). A grid that lists ``n_estimators`` (the paper's) is scored at those counts; without
        it the count is chosen by early stopping: boosting stops once the error has not improved
        for ``patience`` trees, or at ``max_trees``, and the best count is kept.
    cv : number of folds (>= 2), or 0 to skip cross-validation (only with fixed ``params``).
    seed : seeds fold assignment and XGBoost's row subsampling.
    interactions : compute ``interactions_`` (the n x n interaction matrix: ``n^2`` work per path term).
    check_treeshap : read the values with shap's interventional TreeExplainer and check them against the
        exact path decomposition (False: the decomposition alone, the same values; for refits).
    base : None (the paper's surrogate: trees from a constant), ``"linear"``: the trees are
        boosted from a linear base margin, the additive game of :func:`fit_linear_base`
        (refitted inside every fold), and ``n_estimators = 0`` (the linear game alone) is
        always a candidate; the surrogate is then ``linear + trees``, its Shapley values the
        linear coefficients plus the trees' exact values. ``"auto"``: both are candidates and
        cross-validation chooses (``base_``).
    max_trees, patience : early stopping (grids without ``n_estimators``).

    Rows that are the empty or the full coalition are always kept in training (never held
    out): they anchor the surrogate where the game is known exactly.

    Fitted attributes: ``train_masks_`` / ``train_values_`` (the rows fitted), ``model_``
    (``xgboost.XGBRegressor``, None with 0 trees),
    ``best_params_``, ``base_`` (the base used), ``linear_`` (``(intercept, coefficients)`` or None), ``tree_game_``
    (:class:`TreeGame` of the whole surrogate), ``shap_values_`` (exact Shapley values of
    ``S -> f(1_S)``: shap's interventional TreeExplainer on the trees, checked against the
    path decomposition), ``interactions_``, ``f_empty_``, ``f_full_``, and with
    cross-validation ``cv_predictions_`` (out-of-fold predictions, NaN on anchor rows),
    ``cv_mse_``, ``cv_r2_``, ``cv_spearman_``, ``cv_results_`` (per candidate: its best ``params``,
    ``base``, ``mse`` and ``trees_boosted``), ``fold_`` (fold of each row, -1 for anchors) and
    ``fold_game_`` (the best setting's surrogate of each fold, trained without that fold).

    >>> from surrogateshap.coalitions import all_coalitions
    >>> masks = all_coalitions(3)
    >>> values = masks @ np.array([1.0, 2.0, 3.0]) + 4.0 * (masks[:, 0] & masks[:, 1])
    >>> surrogate = TreeSurrogate(params={"max_depth": 2, "n_estimators": 200, "learning_rate": 0.5}, cv=0)
    >>> surrogate.fit(masks, values).shap_values_.round(2)
    array([3., 4., 3.])
    >>> surrogate.get_params()["cv"], round(surrogate.score(masks, values), 3)
    (0, 1.0)
    """

    def __init__(
        self,
        params: dict[str, Any] | None = None,
        param_grid: dict[str, list[Any]] | None = None,
        cv: int = 5,
        seed: int = 0,
        base: str | None = None,
        interactions: bool = True,
        check_treeshap: bool = True,
        max_trees: int = MAX_TREES,
        patience: int = PATIENCE,
    ) -> None:
        self.params = params
        self.param_grid = param_grid
        self.cv = cv
        self.seed = seed
        self.base = base
        self.interactions = interactions
        self.check_treeshap = check_treeshap
        self.max_trees = max_trees
        self.patience = patience

    # fitting -------------------------------------------------------------------------
    def fit(self, masks: np.ndarray, values: np.ndarray) -> TreeSurrogate:
        """Fit on ``masks`` (k, n) bool and ``values`` (k,)."""
        if self.base not in BASES:
            raise ValueError(f"base must be one of {BASES}, got {self.base!r}.")
        masks = np.asarray(masks, dtype=bool)
        values = np.asarray(values, dtype=np.float64)
        self.n_players_ = masks.shape[1]
        self.train_masks_, self.train_values_ = masks, values
        anchor = ~masks.any(axis=1) | masks.all(axis=1)
        if self.base is not None and not ((~masks.any(axis=1)).any() and masks.all(axis=1).any()):
            raise ValueError("a linear base needs the empty and the full coalition among the rows; add both.")
        if self.params is None and self.cv < 2:
            raise ValueError("TreeSurrogate needs cv >= 2 to choose parameters from a grid; pass params= to fix them.")
        held = np.flatnonzero(~anchor)
        n_folds = min(self.cv, held.size) if self.cv else 0
        if self.cv and n_folds < 2:
            raise ValueError(
                f"only {held.size} coalition(s) besides the empty and the full one: too few for {self.cv}-fold "
                "cross-validation; raise the budget or pass cv=0 with fixed params."
            )
        self.fold_ = np.full(masks.shape[0], -1)
        if n_folds:
            rng = np.random.default_rng([self.seed, 2])
            self.fold_[held] = rng.permutation(np.arange(held.size) % n_folds)
        grid = self.param_grid or default_grid(*masks.shape)
        settings = [dict(self.params)] if self.params is not None else _expand(grid)
        bases = [None, "linear"] if self.base == "auto" else [self.base]
        candidates = [(setting, base) for base in bases for setting in settings]
        self.best_params_, self.base_, fold_parts, oof = self._select(masks, values, candidates, n_folds)
        self.linear_, booster = self._fit_part(masks, values, self.best_params_, self.base_)
        self.model_ = booster
        self.tree_game_ = self._surrogate_game(booster, self.linear_)
        self.f_empty_, self.f_full_ = (float(v) for v in self.tree_game_(np.array([[False] * self.n_players_,
                                                                                  [True] * self.n_players_])))
        self.shap_values_ = self._treeshap() if self.check_treeshap else self.tree_game_.shapley_values()
        self.interactions_ = self.tree_game_.interaction_index() if self.interactions else None
        if n_folds:
            self.cv_predictions_ = oof
            ok = ~anchor
            residual = values[ok] - oof[ok]
            total = ((values[ok] - values[ok].mean()) ** 2).sum()
            self.cv_r2_ = float(1.0 - (residual**2).sum() / total) if total > 0 else float("nan")
            self.cv_spearman_ = float(spearmanr(values[ok], oof[ok]).statistic) if total > 0 else float("nan")
            n_trees = self.best_params_["n_estimators"]
            self.fold_game_ = [
                self._surrogate_game(fold_booster[:n_trees] if n_trees else None, linear)
                for fold_booster, linear in fold_parts
            ]
        else:
            self.cv_predictions_ = None
            self.cv_r2_ = self.cv_spearman_ = self.cv_mse_ = None
            self.fold_game_ = []
        return self

    def _margin(self, linear: tuple[float, np.ndarray] | None, masks: np.ndarray) -> np.ndarray | None:
        return None if linear is None else linear[0] + masks @ linear[1]

    def _fit_part(self, masks, values, params, base):
        """Fit the linear base (if any) and the trees on these rows; trees are None for 0 estimators."""
        linear = fit_linear_base(masks, values, LINEAR_RIDGE) if base == "linear" else None
        if int(params.get("n_estimators", 100)) == 0:
            return linear, None
        model = xgb.XGBRegressor(**{**BASE_PARAMS, **params, "random_state": self.seed})
        # dense float32: XGBoost reads absent sparse entries as missing, not 0
        model.fit(masks.astype(np.float32), values, base_margin=self._margin(linear, masks))
        return linear, model

    def _select(self, masks, y, candidates, n_folds):
        """The candidate (parameters, base) of lowest pooled out-of-fold MSE, its fold parts and OOF predictions."""
        self.cv_results_ = []
        if not n_folds:
            setting, base = candidates[0]
            return setting, base, [], None
        best = (np.inf,)
        fold_data: dict[tuple, list] = {}  # the folds' matrices and linear fits, shared by the settings of a base
        for setting, base in candidates:
            key = (base, setting.get("max_bin", BASE_PARAMS["max_bin"]))
            if key not in fold_data:
                fold_data[key] = self._fold_data(masks, y, *key, n_folds)
            counts, curve, parts = self._cross_validate(setting, base, fold_data[key])
            mse = {t: curve[t] for t in counts if t < len(curve) and np.isfinite(curve[t])}
            count = min(mse, key=lambda t: (mse[t], t))
            result = {"params": {**setting, "n_estimators": count}, "base": base, "mse": mse[count],
                      "trees_boosted": len(curve) - 1}
            self.cv_results_.append(result)
            if mse[count] < best[0]:
                best = (mse[count], result["params"], base, parts)
        self.cv_mse_, chosen, base, parts = best
        count = chosen["n_estimators"]
        oof = np.full(y.shape[0], np.nan)
        for fold, (booster, linear) in enumerate(parts):
            test = self.fold_ == fold
            margin = self._margin(linear, masks[test])
            if count == 0:
                oof[test] = margin
            else:
                data = xgb.DMatrix(masks[test].astype(np.float32), base_margin=margin, nthread=1)
                oof[test] = booster.predict(data, iteration_range=(0, count))
        return chosen, base, parts, oof

    def _fold_data(self, masks, y, base, max_bin, n_folds):
        """Per fold: the training and held-out matrices (base margin included), the linear fit and the held-out size."""
        folds = []
        for fold in range(n_folds):
            train, test = self.fold_ != fold, self.fold_ == fold
            linear = fit_linear_base(masks[train], y[train], LINEAR_RIDGE) if base == "linear" else None
            # the quantile matrix XGBRegressor builds for "hist": the same trees as its fit
            dtrain = xgb.QuantileDMatrix(masks[train].astype(np.float32), label=y[train], nthread=1,
                                         base_margin=self._margin(linear, masks[train]), max_bin=max_bin)
            dtest = xgb.DMatrix(masks[test].astype(np.float32), label=y[test],
                                base_margin=self._margin(linear, masks[test]), nthread=1)
            folds.append((dtrain, dtest, linear, int(test.sum())))
        return folds

    def _cross_validate(self, setting, base, fold_data):
        """Boost one model per fold in lockstep; the pooled out-of-fold MSE after each tree.

        Returns the candidate tree counts, the curve (``curve[t]``: MSE with ``t`` trees; with a
        linear base ``t = 0`` is the linear game alone) and each fold's ``(booster, linear)``.
        Listed ``n_estimators`` are scored as they are; without them boosting stops once the
        pooled error has not improved for ``patience`` trees (at most ``max_trees``).
        """
        listed = setting.get("n_estimators")
        listed = [int(t) for t in np.atleast_1d(listed)] if listed is not None else None
        xgb_setting = {k: v for k, v in setting.items() if k != "n_estimators"}
        params = xgb.XGBRegressor(**{**BASE_PARAMS, **xgb_setting, "random_state": self.seed}).get_xgb_params()
        folds = [(xgb.Booster(params, [dtrain, dtest]), dtrain, dtest, linear, size)
                 for dtrain, dtest, linear, size in fold_data]
        held = sum(size for *_, size in folds)

        def pooled_mse(iteration: int) -> float:
            # XGBoost's own (float32) metric at every count, the linear base alone included, so counts compare fairly
            return sum(float(booster.eval_set([(dtest, "oof")], iteration).rsplit(":", 1)[1]) ** 2 * size
                       for booster, _, dtest, _, size in folds) / held

        curve = [pooled_mse(0) if base == "linear" else np.nan]
        longest = max(listed) if listed is not None else self.max_trees
        for iteration in range(longest):
            for booster, dtrain, *_ in folds:
                booster.update(dtrain, iteration)
            curve.append(pooled_mse(iteration))
            if listed is None and iteration + 1 - int(np.nanargmin(curve)) >= self.patience:
                break
        counts = listed if listed is not None else list(range(len(curve)))
        if base == "linear" and listed is not None and self.params is None:
            counts = [0, *counts]  # the linear game alone is always a candidate
        return counts, curve, [(booster, linear) for booster, _, _, linear, _ in folds]

    def _surrogate_game(self, booster: xgb.Booster | xgb.XGBRegressor | None, linear) -> TreeGame:
        """The exact path decomposition of linear base + trees."""
        n = self.n_players_
        intercept, coef = linear if linear is not None else (0.0, None)
        if booster is None:
            return TreeGame.additive(n, intercept, coef)
        if isinstance(booster, xgb.XGBRegressor):
            booster = booster.get_booster()
        zeros = np.zeros((1, n), np.float32)
        margin = None if linear is None else np.array([intercept])
        f_empty = float(booster.predict(xgb.DMatrix(zeros, base_margin=margin, nthread=1))[0])
        return TreeGame.from_xgboost(booster, n, f_empty, linear=coef)

    def _treeshap(self) -> np.ndarray:
        """Interventional TreeSHAP of the trees (all-zeros background, all-ones row), checked.

        With a linear base the linear coefficients are added: an additive game's Shapley
        values are its coefficients.
        """
        exact = self.tree_game_.shapley_values()
        if self.model_ is None:
            return exact
        import shap  # slow to import; only needed here

        n = self.n_players_
        # one at a time: catch_warnings swaps the process-wide filters (utilities run in threads)
        with SHAP_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            explainer = shap.TreeExplainer(
                self.model_, data=np.zeros((1, n), np.float32), feature_perturbation="interventional"
            )
            phi = np.asarray(explainer.shap_values(np.ones((1, n), np.float32)), dtype=np.float64).reshape(n)
        trees_only = self.model_.predict(np.array([[0.0] * n, [1.0] * n], np.float32)).astype(np.float64)
        scale = max(1.0, *np.abs(trees_only))
        expected = float(np.ravel(explainer.expected_value)[0])
        gap = phi.sum() - (trees_only[1] - trees_only[0])
        if abs(expected - trees_only[0]) > 1e-4 * scale or abs(gap) > 1e-4 * scale:
            raise RuntimeError(
                "TreeSHAP check failed: expected_value must equal f(0) and the values must sum to f(1) - f(0) "
                f"(got {expected} vs {trees_only[0]}, sum {phi.sum()} vs {trees_only[1] - trees_only[0]})."
            )
        if self.linear_ is not None:
            phi = phi + self.linear_[1]
        if np.max(np.abs(exact - phi)) > 1e-4 * max(scale, np.abs(exact).max()):
            raise RuntimeError(
                "TreeSHAP and the exact tree decomposition disagree "
                f"(max difference {np.max(np.abs(exact - phi)):.3g}); please report this with the model."
            )
        return phi

    # using the fit ---------------------------------------------------------------------
    def predict(self, masks: np.ndarray) -> np.ndarray:
        """Surrogate values of coalitions ``masks`` (k, n) bool."""
        masks = np.asarray(masks, dtype=bool)
        margin = self._margin(self.linear_, masks)
        if self.model_ is None:
            return margin.astype(np.float64)
        return self.model_.predict(masks.astype(np.float32), base_margin=margin).astype(np.float64)

    def moebius(self, max_order: int = 2) -> tuple[np.ndarray, np.ndarray]:
        """The surrogate's Moebius coefficients up to ``max_order`` (see :meth:`TreeGame.moebius`)."""
        return self.tree_game_.moebius(max_order)


def _expand(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values; ``n_estimators`` stays a list (one boosting run scores them all)."""
    keys = [k for k in grid if k != "n_estimators"]
    counts = {"n_estimators": list(grid["n_estimators"])} if "n_estimators" in grid else {}
    return [{**dict(zip(keys, combo)), **counts} for combo in itertools.product(*(grid[k] for k in keys))]
