"""The XGBoost surrogate of a game: cross-validated fit on coalition masks, exact Shapley read-out."""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import numpy as np
import xgboost as xgb
from scipy.stats import spearmanr

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
BASE_PARAMS: dict[str, Any] = {"subsample": 0.8, "tree_method": "hist", "max_bin": 2, "n_jobs": 1}


class TreeSurrogate:
    """Gradient-boosted trees from coalition masks to game values, with exact Shapley values.

    Parameters
    ----------
    params : fixed XGBoost parameters (e.g. ``PAPER_DEFAULT``); when None, the parameters are
        chosen from ``param_grid`` by K-fold cross-validation (lowest out-of-fold MSE).
    param_grid : grid searched when ``params`` is None (default: the paper's grid). Every
        ``n_estimators`` value is scored from one fit with the largest count, truncated with
        ``iteration_range`` (boosting is sequential, so the truncation is that smaller model).
    cv : number of folds (>= 2), or 0 to skip cross-validation (only with fixed ``params``).
    seed : seeds fold assignment and XGBoost's row subsampling.

    Rows that are the empty or the full coalition are always kept in training (never held
    out): they anchor the surrogate where the game is known exactly.

    Fitted attributes: ``model_`` (``xgboost.XGBRegressor``), ``best_params_``,
    ``tree_game_`` (:class:`TreeGame`), ``shap_values_`` (exact Shapley values of
    ``S -> f(1_S)``, from shap's interventional TreeExplainer), ``interactions_``,
    ``f_empty_``, ``f_full_``, and with cross-validation ``cv_predictions_`` (out-of-fold
    predictions, NaN on anchor rows), ``cv_r2_``, ``cv_spearman_``, ``fold_`` (fold of
    each row, -1 for anchors) and ``fold_game_`` (the best setting's model of each fold,
    as a TreeGame: trained without that fold).
    """

    def __init__(
        self,
        params: dict[str, Any] | None = None,
        param_grid: dict[str, list[Any]] | None = None,
        cv: int = 5,
        seed: int = 0,
    ) -> None:
        self.params = params
        self.param_grid = param_grid
        self.cv = cv
        self.seed = seed

    # fitting -------------------------------------------------------------------------
    def fit(self, masks: np.ndarray, values: np.ndarray) -> TreeSurrogate:
        """Fit on ``masks`` (k, n) bool and ``values`` (k,)."""
        masks = np.asarray(masks, dtype=bool)
        values = np.asarray(values, dtype=np.float64)
        x = masks.astype(np.float32)  # dense float32: XGBoost reads absent sparse entries as missing
        self.n_players_ = masks.shape[1]
        anchor = ~masks.any(axis=1) | masks.all(axis=1)
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
        candidates = [dict(self.params)] if self.params is not None else _expand(self.param_grid or PAPER_GRID)
        self.best_params_, fold_models, oof = self._select(x, values, candidates, n_folds)
        self.model_ = self._new_model(self.best_params_).fit(x, values)
        self.tree_game_ = self._tree_game(self.model_.get_booster())
        self.f_empty_, self.f_full_ = (float(v) for v in self.predict(np.array([[False] * masks.shape[1],
                                                                                   [True] * masks.shape[1]])))
        self.shap_values_ = self._treeshap(self.model_)
        self.interactions_ = self.tree_game_.interaction_index()
        if n_folds:
            self.cv_predictions_ = oof
            ok = ~anchor
            residual = values[ok] - oof[ok]
            total = ((values[ok] - values[ok].mean()) ** 2).sum()
            self.cv_r2_ = float(1.0 - (residual**2).sum() / total) if total > 0 else float("nan")
            self.cv_spearman_ = float(spearmanr(values[ok], oof[ok]).statistic) if total > 0 else float("nan")
            n_trees = self.best_params_["n_estimators"]
            self.fold_game_ = [self._tree_game(model[:n_trees]) for model in fold_models]
        else:
            self.cv_predictions_ = None
            self.cv_r2_ = self.cv_spearman_ = None
            self.fold_game_ = []
        return self

    def _new_model(self, params: dict[str, Any]) -> xgb.XGBRegressor:
        return xgb.XGBRegressor(**{**BASE_PARAMS, **params, "random_state": self.seed})

    def _select(self, x, y, candidates, n_folds):
        """Score candidates by out-of-fold MSE; return the best, its fold boosters and OOF predictions."""
        if not n_folds:
            return candidates[0], [], None
        groups: dict[tuple, list[int]] = {}
        for setting in candidates:
            key = tuple(sorted((k, v) for k, v in setting.items() if k != "n_estimators"))
            groups.setdefault(key, []).append(int(setting.get("n_estimators", 100)))
        best = (np.inf, None, None, None)
        for key, tree_counts in groups.items():
            base = dict(key)
            largest = max(tree_counts)
            boosters, oof = [], {t: np.full(y.shape[0], np.nan) for t in tree_counts}
            for fold in range(n_folds):
                train = self.fold_ != fold
                test = self.fold_ == fold
                model = self._new_model({**base, "n_estimators": largest}).fit(x[train], y[train])
                boosters.append(model.get_booster())
                for t in tree_counts:
                    oof[t][test] = model.predict(x[test], iteration_range=(0, t))
            held = self.fold_ >= 0
            for t in tree_counts:
                mse = float(np.mean((oof[t][held] - y[held]) ** 2))
                if mse < best[0]:
                    best = (mse, {**base, "n_estimators": t}, boosters, oof[t])
        return best[1], best[2], best[3]

    def _tree_game(self, booster: xgb.Booster) -> TreeGame:
        f_empty = float(booster.predict(xgb.DMatrix(np.zeros((1, self.n_players_), np.float32)))[0])
        return TreeGame.from_xgboost(booster, self.n_players_, f_empty)

    def _treeshap(self, model: xgb.XGBRegressor) -> np.ndarray:
        """Interventional TreeSHAP, all-zeros background, explaining the all-ones row; checked."""
        import shap  # slow to import; only needed here

        n = self.n_players_
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            explainer = shap.TreeExplainer(
                model, data=np.zeros((1, n), np.float32), feature_perturbation="interventional"
            )
            phi = np.asarray(explainer.shap_values(np.ones((1, n), np.float32)), dtype=np.float64).reshape(n)
        scale = max(1.0, abs(self.f_full_), abs(self.f_empty_))
        expected = float(np.ravel(explainer.expected_value)[0])
        gap = phi.sum() - (self.f_full_ - self.f_empty_)
        if abs(expected - self.f_empty_) > 1e-4 * scale or abs(gap) > 1e-4 * scale:
            raise RuntimeError(
                "TreeSHAP check failed: expected_value must equal f(0) and the values must sum to f(1) - f(0) "
                f"(got {expected} vs {self.f_empty_}, sum {phi.sum()} vs {self.f_full_ - self.f_empty_})."
            )
        exact = self.tree_game_.shapley_values()
        if np.max(np.abs(exact - phi)) > 1e-4 * scale:
            raise RuntimeError(
                "TreeSHAP and the exact tree decomposition disagree "
                f"(max difference {np.max(np.abs(exact - phi)):.3g}); please report this with the model."
            )
        return phi

    # using the fit ---------------------------------------------------------------------
    def predict(self, masks: np.ndarray) -> np.ndarray:
        """Surrogate values of coalitions ``masks`` (k, n) bool."""
        return self.model_.predict(np.asarray(masks, dtype=np.float32)).astype(np.float64)

    def moebius(self, max_order: int = 2) -> tuple[np.ndarray, np.ndarray]:
        """The surrogate's Moebius coefficients up to ``max_order`` (see :meth:`TreeGame.moebius`)."""
        return self.tree_game_.moebius(max_order)


def _expand(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]
