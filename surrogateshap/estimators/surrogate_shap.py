"""SurrogateSHAP: sample coalitions, fit a tree surrogate, read exact Shapley values off its trees."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from ..checks import AUTO_BUDGET, check_int
from ..coalitions import SAMPLERS, CoalitionSample, nested_coalitions
from .base import SamplingEstimator
from .result import Attribution
from .surrogate import MAX_TREES, TreeSurrogate

#: "auto": "shrunk" where cross-validation fitted fold models (cv >= 2), None otherwise
ADJUSTMENTS = ("auto", "shrunk", "msr", None)
STANDARD_ERRORS = ("folds", "bootstrap", None)
#: the interaction matrix is computed by default up to this many players (it has n^2 entries)
INTERACTIONS_UP_TO = 100
#: budget="auto": stop once the estimated error (:func:`relative_error`) is at most this
AUTO_TOLERANCE = 0.05
#: budget="auto": the most coalitions evaluated
AUTO_MAX_BUDGET = 4096
#: sampler="auto": the Shapley-kernel sizes below this many players, sizes drawn uniformly ("leverage") from it on.
#: With ~4-8 coalitions per player the kernel spends much of the budget on sizes 1 and n - 1. On the accuracy game
#: of benchmarks/scale.py (normalised error, kernel -> uniform sizes): n = 1000, budgets 4000 / 8000: 0.097 ->
#: 0.069, 0.067 -> 0.042 (scale.md, 3 seeds); an exploratory run (median of 2-3 seeds, the CV choosing among depths
#: 3, 4 and 6) at n = 50, budgets 200 / 400: 0.334 -> 0.339, 0.112 -> 0.109; n = 100, 400 / 800: 0.403 -> 0.150,
#: 0.090 -> 0.075; n = 258, 1000 / 2000: 0.153 -> 0.122, 0.090 -> 0.078. At n <= 20 the kernel is better (the
#: geometric mean over benchmarks/estimator_peers.py's games: 0.232 vs 0.262 at budget 64, 0.049 vs 0.063 at 256).
LEVERAGE_FROM_PLAYERS = 50
#: budget="auto": the first round's coalitions (at least 2n + 2, so the linear base is determined); each
#: further round doubles the budget
AUTO_FIRST_ROUND = 128


def relative_error(values: np.ndarray, std: np.ndarray) -> float:
    """The estimated error of ``values`` relative to their spread: ``||std|| / ||values - mean(values)||``.

    An estimate of ``||phi_hat - phi|| / ||phi - mean(phi)||`` when ``std`` are the values' standard
    errors: the error in what sets contributors apart (their mean is fixed by efficiency). Infinite
    when the values are all equal but uncertain.

    >>> relative_error(np.array([1.0, 3.0]), np.array([0.1, 0.1]))  # sqrt(0.02) / sqrt(2)
    0.1
    """
    spread = float(np.linalg.norm(values - values.mean()))
    noise = float(np.linalg.norm(std))
    if spread == 0.0:
        return 0.0 if noise == 0.0 else float("inf")
    return round(noise / spread, 12)


def round_prefixes(sample: CoalitionSample) -> list[int]:
    """The rows of each ``budget="auto"`` round in a :func:`~surrogateshap.coalitions.nested_coalitions`
    sample: :func:`round_budgets`, one row fewer where a budget would split a pair.

    >>> from surrogateshap.coalitions import nested_coalitions
    >>> round_prefixes(nested_coalitions(20, 301, seed=0, paired=True))
    [128, 256, 300]
    """
    n, rows = sample.masks.shape[1], len(sample)
    return [budget - int(budget < rows and sample.unit[budget] == sample.unit[budget - 1])
            for budget in round_budgets(n, rows)]


def round_budgets(n_players: int, max_budget: int) -> list[int]:
    """The budgets of ``budget="auto"``'s rounds: ``max(AUTO_FIRST_ROUND, 2n + 2)``, doubling, up to ``max_budget``.

    >>> round_budgets(20, 1000)
    [128, 256, 512, 1000]
    """
    budgets = [min(max(AUTO_FIRST_ROUND, 2 * n_players + 2), max_budget)]
    while budgets[-1] < max_budget:
        budgets.append(min(2 * budgets[-1], max_budget))
    return budgets


def msr_residual_variance(masks: np.ndarray, residuals: np.ndarray) -> np.ndarray:
    """The variance of :func:`msr_residual_shapley`'s estimate for each player, the residuals' variance pooled.

    Each (size, in/out) cell mean has variance ``sigma^2 / count``, ``sigma^2`` the variance of all the
    residuals (a size's cells hold too few coalitions for their own); a size adds
    ``sigma^2 (1 / n_in + 1 / n_out) / n^2`` for a player it covers both ways.

    >>> masks = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], bool)
    >>> msr_residual_variance(masks, np.array([1.0, -1.0, -1.0, 1.0]))  # 4/3 * (1/2 + 1/2) / 4
    array([0.33333333, 0.33333333])
    """
    n = masks.shape[1]
    sizes = masks.sum(axis=1)
    inner = (sizes > 0) & (sizes < n)
    if inner.sum() < 2:
        return np.zeros(n)
    sigma2 = float(np.var(residuals[inner], ddof=1))
    variance = np.zeros(n)
    for _, n_in, n_out, ok in _size_cells(masks):
        variance += np.where(ok, 1.0 / np.maximum(n_in, 1) + 1.0 / np.maximum(n_out, 1), 0.0)
    return sigma2 * variance / n**2


def _size_cells(masks: np.ndarray):
    """For each coalition size strictly between 0 and n: its rows, each player's counts in and out of them, and
    where both counts are positive (the players that size informs)."""
    sizes = masks.sum(axis=1)
    for size in np.unique(sizes):
        if 0 < size < masks.shape[1]:
            rows = sizes == size
            n_in = masks[rows].sum(axis=0)
            n_out = int(rows.sum()) - n_in
            yield rows, n_in, n_out, (n_in > 0) & (n_out > 0)


def shrinkage_factor(correction: np.ndarray, variance: np.ndarray) -> float:
    """Positive-part James-Stein factor for a noisy correction: ``max(0, 1 - sum(variance) / ||correction||^2)``.

    1 keeps the correction whole, 0 drops it: a correction no larger than its own noise is shrunk to nothing.

    >>> shrinkage_factor(np.array([3.0, 4.0]), np.array([2.5, 2.5])), shrinkage_factor(np.ones(2), np.ones(2))
    (0.8, 0.0)
    """
    size = float(correction @ correction)
    return 0.0 if size == 0.0 else max(0.0, 1.0 - float(variance.sum()) / size)


def msr_residual_shapley(masks: np.ndarray, residuals: np.ndarray, r_empty: float, r_full: float) -> np.ndarray:
    """Maximum-sample-reuse estimate of the Shapley values of a residual game ``r``.

    The Shapley value splits by coalition size: ``phi_i(r) = (r(N) - r(empty)) / n +
    (1/n) sum_{s=1}^{n-1} [mean of r over size-s coalitions containing i - mean over those
    without i]``. The empty and full terms are exact; each size's two means are estimated
    by the sample means of the sampled coalitions of that size (the samplers draw a size's
    coalitions uniformly), so every sample informs every player, as in the MSR estimator
    of Witter, Liu & Musco (NeurIPS 2025). Normalising within each (size, in/out) cell,
    rather than weighting by inverse inclusion probabilities, removes the variance of the
    cell counts; a size whose sample lacks coalitions with (or without) player i adds
    nothing for i. With every coalition sampled the estimate is exact.

    >>> from surrogateshap.coalitions import all_coalitions
    >>> masks = all_coalitions(3)
    >>> msr_residual_shapley(masks, masks @ np.array([1.0, 2.0, 3.0]), 0.0, 6.0)
    array([1., 2., 3.])
    """
    n = masks.shape[1]
    phi = np.full(n, (r_full - r_empty) / n)
    for rows, n_in, n_out, ok in _size_cells(masks):
        z = masks[rows].astype(np.float64)
        r = residuals[rows]
        mean_in = np.divide(z.T @ r, n_in, out=np.zeros(n), where=ok)
        mean_out = np.divide((1.0 - z).T @ r, n_out, out=np.zeros(n), where=ok)
        phi += np.where(ok, mean_in - mean_out, 0.0) / n
    return phi


class SurrogateSHAP(SamplingEstimator):
    """SurrogateSHAP: sample coalitions, fit a tree surrogate, read its exact Shapley values.

    1. Sample coalitions (``sampler``, ``paired``: each with its complement by default; the empty
       and the full coalition always included) and evaluate the game on them once.
    2. Fit :class:`~surrogateshap.estimators.surrogate.TreeSurrogate` (parameters by ``cv``-fold
       cross-validation over ``param_grid``, the tree count by early stopping on the pooled
       out-of-fold error, or fixed ``params``; ``base="auto"`` lets cross-validation choose between
       trees from a constant and trees boosted from the Shapley-kernel linear fit, "no trees"
       among the candidates).
    3. Values ``phi(f)``: interventional TreeSHAP (all-zeros background, all-ones row),
       cross-checked against the exact path decomposition.
    4. ``adjust="shrunk"`` (the default wherever ``cv >= 2``): the mean of the surrogate's values and its
       fold models' (the K models cross-validation fitted without one fold each: bagging at no cost), plus
       the maximum-sample-reuse estimate of the Shapley values of the residual game on every out-of-fold
       residual (:func:`msr_residual_shapley`), shrunk toward zero by the positive-part James-Stein factor
       (:func:`shrinkage_factor`, with :func:`msr_residual_variance`): a correction within its noise is
       dropped, one well beyond it is kept whole (``diagnostics["shrinkage"]``). On the games of
       ``benchmarks/estimator_peers.py`` the geometric-mean error against ``adjust=None`` moved
       0.232 -> 0.234, 0.129 -> 0.122, 0.049 -> 0.047, 0.027 -> 0.022, 0.012 -> 0.010 at budgets
       64 to 1024. With ``adjust="msr"`` (Tree MSR, Witter, Liu & Musco 2025): cross-fitted regression
       adjustment. For each fold k, ``phi(f_-k)`` plus the maximum-sample-reuse estimate of
       the Shapley values of the residual ``v - f_-k`` on fold k's coalitions (out-of-fold
       residuals, :func:`msr_residual_shapley`); averaged over folds. ``std`` is then the
       spread across folds divided by sqrt(folds).
    5. Efficiency: the surrogate's values sum to ``f(N) - f(empty)``, not to the game's
       ``v(N) - v(empty)``. The difference is split equally among the players (the
       minimum-norm shift that restores efficiency; it is the Shapley value of the residual
       game when only its empty and full values are known). The shift is reported in
       ``diagnostics["efficiency_shift"]``.

    ``budget="auto"``: coalitions are sampled in rounds (:func:`round_budgets`; each round's sample
    contains the earlier ones', :func:`~surrogateshap.coalitions.nested_coalitions`, so no evaluation is
    wasted) and the values fitted after each; sampling stops at the first round whose estimated error
    (:func:`relative_error` of the values and their standard errors) is at most ``tolerance``, or at
    ``max_budget`` (with a warning). ``diagnostics["budget_trace"]`` lists each round's budget, estimated
    error and change of the values since the round before; ``diagnostics["converged"]`` says which way it
    stopped.

    ``std="folds"`` (the default) reads the standard errors off the fold models
    cross-validation already fitted (:func:`fold_jackknife_std`, no refit; with ``adjust="shrunk"``
    combined with the shrunk correction's variance; on the games of ``benchmarks/budget_auto.py``
    2 std covers the exact value for 94-100% of the players at every budget from 128 to 2048, and the
    estimated error is conservative, 1.5-7x the true one: ``results/budget_auto.md``);
    ``std="bootstrap"`` refits the best setting on ``n_bootstrap`` bootstrap resamples of the
    coalitions, empty and full always kept; None: no standard errors.
    ``interactions`` is the surrogate's exact pairwise Shapley interaction matrix, its
    diagonal the final values (by default up to ``INTERACTIONS_UP_TO`` players); ``surrogate`` the
    fitted ``TreeSurrogate``.

    Parameters
    ----------
    budget, seed : see :class:`~surrogateshap.estimators.base.SamplingEstimator`.
    sampler, paired : the coalition sampler (:func:`~surrogateshap.coalitions.sample_coalitions`); ``"auto"``:
        ``"shapley"`` below :data:`LEVERAGE_FROM_PLAYERS` players, ``"leverage"`` from there on (the one used is
        ``diagnostics["sampler"]``).
    params, param_grid, cv, base, max_trees : the surrogate
        (:class:`~surrogateshap.estimators.surrogate.TreeSurrogate`).
    std : ``"folds"``, ``"bootstrap"`` or None.
    n_bootstrap : refits for ``std="bootstrap"``.
    adjust : ``"auto"`` (``"shrunk"`` with ``cv >= 2``, else None), ``"shrunk"``, ``"msr"`` or None (the
        surrogate's values as they are); the one used is ``diagnostics["adjust"]``.
    interactions : compute the pairwise interaction matrix; None: for up to ``INTERACTIONS_UP_TO`` players.
    tolerance, max_budget : ``budget="auto"``'s stopping rule (default :data:`AUTO_TOLERANCE`,
        :data:`AUTO_MAX_BUDGET`).

    >>> from surrogateshap.games import MoebiusGame
    >>> game = MoebiusGame(np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]], bool), np.array([1.0, 2.0, 3.0]))
    >>> att = SurrogateSHAP(budget=8, params={"max_depth": 2, "n_estimators": 50, "learning_rate": 0.5},
    ...                     cv=0, std=None, base=None, paired=False).estimate(game)
    >>> att.values.round(2), float(att.interactions[0, 1].round(2))
    (array([2.5, 3.5, 0. ]), 3.0)
    >>> auto = SurrogateSHAP(budget="auto", tolerance=0.2).estimate(game)
    >>> auto.diagnostics["converged"], auto.diagnostics["budget_trace"][-1]["budget"]
    (True, 8)
    """

    name = "surrogateshap"
    auto_budget = True

    def __init__(
        self,
        budget: int | None = None,
        seed: int = 0,
        sampler: str = "auto",
        paired: bool = True,
        params: dict[str, Any] | None = None,
        param_grid: dict[str, list[Any]] | None = None,
        cv: int = 5,
        std: str | None = "folds",
        n_bootstrap: int = 20,
        adjust: str | None = "auto",
        base: str | None = "auto",
        interactions: bool | None = None,
        max_trees: int = MAX_TREES,
        tolerance: float = AUTO_TOLERANCE,
        max_budget: int = AUTO_MAX_BUDGET,
    ) -> None:
        super().__init__(budget, seed)
        self.sampler = sampler
        self.paired = paired
        self.params = params
        self.param_grid = param_grid
        self.cv = cv
        self.std = std
        self.n_bootstrap = n_bootstrap
        self.adjust = adjust
        self.base = base
        self.interactions = interactions
        self.max_trees = max_trees
        self.tolerance = tolerance
        self.max_budget = max_budget

    def _check(self) -> None:
        if self.sampler != "auto" and self.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}; choose 'auto' or one of {SAMPLERS}.")
        if self.adjust not in ADJUSTMENTS:
            raise ValueError(f"adjust must be one of {ADJUSTMENTS}, got {self.adjust!r}.")
        check_int(self.cv, "cv", 0)
        check_int(self.n_bootstrap, "n_bootstrap", 2 if self.std == "bootstrap" else 0,
                  hint="std='bootstrap' takes the spread of at least two refits.")
        check_int(self.max_trees, "max_trees", 1)
        if self.std not in STANDARD_ERRORS:
            raise ValueError(f"surrogateshap std must be one of {STANDARD_ERRORS}, got {self.std!r}.")
        if self.std == "folds" and self.cv < 2:
            raise ValueError("std='folds' reads the standard errors off the cross-validation folds: use cv >= 2, "
                             "or std='bootstrap' (refits) or std=None.")
        if self.adjust in ("msr", "shrunk") and self.cv < 2:
            raise ValueError(f"adjust={self.adjust!r} needs out-of-fold residuals: use cv >= 2 (or adjust=None).")
        check_int(self.max_budget, "max_budget", 2, hint="The empty and the full coalition count toward it.")
        if isinstance(self.tolerance, bool) or not (isinstance(self.tolerance, (int, float))
                                                    and 0.0 < float(self.tolerance) < float("inf")):
            raise ValueError(f"tolerance must be a positive number (the relative error to stop at, e.g. 0.05), "
                             f"got {self.tolerance!r}.")
        if self.budget == AUTO_BUDGET and self.std is None and self.adjustment() != "msr":
            raise ValueError("budget='auto' stops on the values' standard errors: use std='folds' (the default) "
                             "or 'bootstrap', not std=None.")

    def adjustment(self) -> str | None:
        """The adjustment used (``adjust="auto"`` resolved: ``"shrunk"`` with cross-validation, else None).

        >>> SurrogateSHAP().adjustment(), SurrogateSHAP(cv=0).adjustment(), SurrogateSHAP(adjust="msr").adjustment()
        ('shrunk', None, 'msr')
        """
        if self.adjust == "auto":
            return "shrunk" if self.cv >= 2 else None
        return self.adjust

    def sampler_for(self, n_players: int) -> str:
        """The coalition sampler used for a game of ``n_players`` (``sampler="auto"`` resolved).

        >>> SurrogateSHAP().sampler_for(20), SurrogateSHAP().sampler_for(258)
        ('shapley', 'leverage')
        """
        if self.sampler != "auto":
            return self.sampler
        return "leverage" if n_players >= LEVERAGE_FROM_PLAYERS else "shapley"

    def _estimate(self, game: object) -> Attribution:
        game = self._cached(game)
        sampler = self.sampler_for(game.n_players)
        if self.budget == AUTO_BUDGET:
            att = self._estimate_in_rounds(game)
        else:
            sample = self._sample(game.n_players, sampler, self.paired)
            att = self._from_values(sample.masks, game(sample.masks))
        att.n_evaluations = game.n_evaluations
        att.diagnostics.update({"sampler": sampler, "paired": self.paired})
        return att

    def _estimate_in_rounds(self, game: object) -> Attribution:
        """``budget="auto"``: fit after each round of :func:`round_budgets`, stop at ``tolerance``."""
        n = game.n_players
        max_budget = min(int(self.max_budget), 2**n)
        self._check_memory(max_budget, n)
        sample = nested_coalitions(n, max_budget, self.sampler_for(n), seed=self.seed, paired=self.paired)
        values = np.empty(0)
        trace: list[dict[str, Any]] = []
        previous = None
        for cut in round_prefixes(sample):
            values = np.concatenate([values, game(sample.masks[values.size : cut])])
            att = self._from_values(sample.masks[:cut], values)
            error = relative_error(att.values, att.std)
            spread = float(np.linalg.norm(att.values - att.values.mean()))
            change = None if previous is None or spread == 0 else float(np.linalg.norm(att.values - previous) / spread)
            trace.append({"budget": int(cut), "error": error, "change": change})
            if error <= self.tolerance:
                break
            previous = att.values
        converged = error <= self.tolerance
        if not converged:
            reached = f"all {2**n} coalitions" if len(sample) == 2**n else f"max_budget={int(self.max_budget)}"
            warnings.warn(
                f"budget='auto' stopped at {reached} ({cut} evaluated) with an estimated relative error of "
                f"{error:.3g}, above tolerance={self.tolerance}; raise max_budget or tolerance.",
                stacklevel=3,
            )
        att.diagnostics.update({"budget_trace": trace, "converged": converged, "tolerance": float(self.tolerance)})
        return att

    def estimate_from_values(self, masks: np.ndarray, values: np.ndarray) -> Attribution:
        """SurrogateSHAP values from coalitions already evaluated (e.g. retraining results).

        ``masks`` (k, n) must contain the empty and the full coalition; within each size the
        other coalitions should be a uniform draw (as every sampler here makes them). ``budget``,
        ``sampler`` and ``paired`` play no part.
        """
        self.check()
        return self._from_values(masks, values)

    def _from_values(self, masks: np.ndarray, values: np.ndarray) -> Attribution:
        with threadpool_limits(limits=1):  # small matrices: one BLAS thread, no oversubscription beside XGBoost's
            return self._fit_values(masks, values)

    def _fit_values(self, masks: np.ndarray, values: np.ndarray) -> Attribution:
        masks = np.asarray(masks, dtype=bool)
        values = np.asarray(values, dtype=np.float64)
        n = masks.shape[1]
        empty, full = ~masks.any(axis=1), masks.all(axis=1)
        if not empty.any() or not full.any():
            raise ValueError(
                "SurrogateSHAP needs the value of the empty and of the full coalition among the evaluated "
                "coalitions (they fix v_empty and v_full); add both rows."
            )
        order = np.concatenate([[np.argmax(empty), np.argmax(full)], np.flatnonzero(~empty & ~full)])
        masks, values = masks[order], values[order]
        v_empty, v_full = float(values[0]), float(values[1])
        want_interactions = n <= INTERACTIONS_UP_TO if self.interactions is None else bool(self.interactions)
        adjust = self.adjustment()
        surrogate = TreeSurrogate(
            params=self.params, param_grid=self.param_grid, cv=self.cv, seed=self.seed, base=self.base,
            interactions=want_interactions, max_trees=self.max_trees,
        ).fit(masks, values)
        plain = surrogate.shap_values_.copy()
        diagnostics: dict[str, Any] = {
            "n_coalitions": int(masks.shape[0]),
            "best_params": surrogate.best_params_,
            "cv_r2": surrogate.cv_r2_,
            "cv_spearman": surrogate.cv_spearman_,
            "adjust": adjust,
            "base": surrogate.base_,
            "std": "folds" if adjust == "msr" else self.std,
        }
        std = None
        if adjust == "msr":
            n_folds = len(surrogate.fold_game_)
            estimates = []
            for fold, fold_game in enumerate(surrogate.fold_game_):
                rows = np.flatnonzero(surrogate.fold_ == fold)
                r_empty, r_full = values[:2] - fold_game(masks[:2])
                residuals = values[rows] - fold_game(masks[rows])
                correction = msr_residual_shapley(masks[rows], residuals, r_empty, r_full)
                estimates.append(fold_game.shapley_values() + correction)
            estimates = np.array(estimates)
            phi = estimates.mean(axis=0)
            std = estimates.std(axis=0, ddof=1) / np.sqrt(n_folds)
        else:
            phi = plain
            wanted = self.std == "folds" or adjust == "shrunk"  # both need cv >= 2: K fold models
            fold_values = [game.shapley_values() for game in surrogate.fold_game_] if wanted else []
            if adjust == "shrunk":
                phi, variance, diagnostics["shrinkage"] = self._shrunk(surrogate, masks, values, plain,
                                                                       np.mean(fold_values, axis=0))
            if self.std == "folds":
                std = fold_jackknife_std([_efficient(v, v_full - v_empty) for v in fold_values])
            elif self.std == "bootstrap" and self.n_bootstrap:
                std = self._bootstrap_std(
                    lambda rows, b: self._refit_values(surrogate, masks, values, rows, b),
                    [[np.array([row]) for row in range(2, masks.shape[0])]], self.n_bootstrap, stream=3,
                )
            if adjust == "shrunk" and std is not None:
                std = np.sqrt(std**2 + variance)
        if adjust is not None:
            diagnostics["values_unadjusted"] = _efficient(plain, v_full - v_empty).tolist()
        shift = (v_full - v_empty - phi.sum()) / n
        phi = phi + shift
        diagnostics["efficiency_shift"] = float(shift)
        interactions = None
        if want_interactions:
            interactions = surrogate.interactions_.copy()
            np.fill_diagonal(interactions, phi)
        return Attribution(
            values=phi,
            std=std,
            interactions=interactions,
            v_empty=v_empty,
            v_full=v_full,
            method=self.name,
            n_evaluations=int(masks.shape[0]),
            surrogate=surrogate,
            diagnostics=diagnostics,
        )

    def _shrunk(self, surrogate: TreeSurrogate, masks: np.ndarray, values: np.ndarray, plain: np.ndarray,
                fold_values: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """``adjust="shrunk"``: the bagged values (``plain`` and the fold models' mean ``fold_values``) plus
        the shrunk out-of-fold MSR correction, that correction's variance (after shrinking) and the factor."""
        held = surrogate.fold_ >= 0
        residuals = values[held] - surrogate.cv_predictions_[held]
        # the anchors (rows 0 and 1, never held out) against the fold models' mean
        r_empty, r_full = values[:2] - np.mean([game(masks[:2]) for game in surrogate.fold_game_], axis=0)
        correction = msr_residual_shapley(masks[held], residuals, r_empty, r_full)
        correction -= correction.mean()  # its total is restored by the efficiency shift
        variance = msr_residual_variance(masks[held], residuals)
        factor = shrinkage_factor(correction, variance)
        return 0.5 * (plain + fold_values) + factor * correction, factor**2 * variance, factor

    def _refit_values(
        self, surrogate: TreeSurrogate, masks: np.ndarray, values: np.ndarray, rows: np.ndarray, b: int
    ) -> np.ndarray:
        """The Shapley values of a refit (best parameters, no CV) on the resampled ``rows`` plus the anchors."""
        rows = np.concatenate([[0, 1], rows])
        # the values only: no shap cross-check, no interaction matrix (the main fit has both)
        refit = clone(surrogate).set_params(params=surrogate.best_params_, base=surrogate.base_, cv=0,
                                            seed=self.seed + 1 + b,
                                            interactions=False, check_treeshap=False)
        return refit.fit(masks[rows], values[rows]).tree_game_.shapley_values()


def fold_jackknife_std(estimates: list[np.ndarray]) -> np.ndarray:
    """Delete-a-group jackknife standard error from the K fold estimates (each fitted without one fold).

    ``sqrt((K - 1) / K * sum_k (phi_k - mean)^2)``: the fold models are the jackknife's
    leave-one-group-out refits, so cross-validation already paid for them.

    >>> fold_jackknife_std([np.array([1.0, 0.0]), np.array([3.0, 0.0])])  # sqrt(1/2 * (1 + 1))
    array([1., 0.])
    """
    stack = np.asarray(estimates, dtype=np.float64)
    k = stack.shape[0]
    return np.sqrt((k - 1) / k * ((stack - stack.mean(axis=0)) ** 2).sum(axis=0))


def _efficient(phi: np.ndarray, total: float) -> np.ndarray:
    return phi + (total - phi.sum()) / phi.size
