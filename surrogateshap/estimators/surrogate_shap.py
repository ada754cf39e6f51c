"""SurrogateSHAP: sample coalitions, fit a tree surrogate, read exact Shapley values off its trees."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..coalitions import sample_coalitions
from ..games import CachedGame
from .attribution import Attribution
from .surrogate import TreeSurrogate

ADJUSTMENTS = (None, "msr")


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
    """
    n = masks.shape[1]
    sizes = masks.sum(axis=1)
    phi = np.full(n, (r_full - r_empty) / n)
    for size in np.unique(sizes):
        if size == 0 or size == n:
            continue
        rows = sizes == size
        z = masks[rows].astype(np.float64)
        r = residuals[rows]
        n_in, n_out = z.sum(axis=0), (1.0 - z).sum(axis=0)
        ok = (n_in > 0) & (n_out > 0)
        mean_in = np.divide(z.T @ r, n_in, out=np.zeros(n), where=ok)
        mean_out = np.divide((1.0 - z).T @ r, n_out, out=np.zeros(n), where=ok)
        phi += np.where(ok, mean_in - mean_out, 0.0) / n
    return phi


def surrogate_shap(
    game: CachedGame,
    budget: int,
    seed: int = 0,
    sampler: str = "shapley",
    paired: bool = False,
    **options: Any,
) -> Attribution:
    """SurrogateSHAP values of ``game`` from at most ``budget`` evaluated coalitions.

    Samples coalitions (``sampler``, ``paired``; the empty and the full coalition always
    included), evaluates the game on them once, and hands them to
    :func:`surrogate_shap_from_values` (``options`` are its keyword arguments).
    """
    sample = sample_coalitions(game.n_players, budget, sampler, seed=seed, paired=paired)
    values = game(sample.masks)
    att = surrogate_shap_from_values(sample.masks, values, seed=seed, **options)
    att.n_evaluations = game.n_evaluations
    att.diagnostics.update({"sampler": sampler, "paired": paired})
    return att


def surrogate_shap_from_values(
    masks: np.ndarray,
    values: np.ndarray,
    seed: int = 0,
    params: dict[str, Any] | None = None,
    param_grid: dict[str, list[Any]] | None = None,
    cv: int = 5,
    n_bootstrap: int = 20,
    adjust: str | None = None,
    base: str | None = None,
) -> Attribution:
    """SurrogateSHAP values from coalitions already evaluated (e.g. retraining results).

    ``masks`` (k, n) must contain the empty and the full coalition; within each size the
    other coalitions should be a uniform draw (as every sampler here makes them).

    1. Fit :class:`TreeSurrogate` (parameters by ``cv``-fold cross-validation over
       ``param_grid``, or fixed ``params``; ``base="linear"`` boosts the trees from the
       Shapley-kernel linear fit, with "no trees" among the candidates).
    2. Values ``phi(f)``: interventional TreeSHAP (all-zeros background, all-ones row),
       cross-checked against the exact path decomposition.
    3. With ``adjust="msr"`` (Tree MSR, Witter, Liu & Musco 2025): cross-fitted regression
       adjustment. For each fold k, ``phi(f_-k)`` plus the maximum-sample-reuse estimate of
       the Shapley values of the residual ``v - f_-k`` on fold k's coalitions (out-of-fold
       residuals, :func:`msr_residual_shapley`); averaged over folds. ``std`` is then the
       spread across folds divided by sqrt(folds).
    4. Efficiency: the surrogate's values sum to ``f(N) - f(empty)``, not to the game's
       ``v(N) - v(empty)``. The difference is split equally among the players (the
       minimum-norm shift that restores efficiency; it is the Shapley value of the residual
       game when only its empty and full values are known). The shift is reported in
       ``diagnostics["efficiency_shift"]``.

    Without adjustment ``std`` comes from ``n_bootstrap`` refits (best parameters) on
    bootstrap resamples of the coalitions, empty and full always kept (0 turns it off).
    ``interactions`` is the surrogate's exact pairwise Shapley interaction matrix, its
    diagonal the final values.
    """
    if adjust not in ADJUSTMENTS:
        raise ValueError(f"adjust must be one of {ADJUSTMENTS}, got {adjust!r}.")
    if adjust == "msr" and cv < 2:
        raise ValueError("adjust='msr' needs out-of-fold residuals: use cv >= 2.")
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
    surrogate = TreeSurrogate(params=params, param_grid=param_grid, cv=cv, seed=seed, base=base).fit(masks, values)
    plain = surrogate.shap_values_.copy()
    diagnostics: dict[str, Any] = {
        "n_coalitions": int(masks.shape[0]),
        "best_params": surrogate.best_params_,
        "cv_r2": surrogate.cv_r2_,
        "cv_spearman": surrogate.cv_spearman_,
        "adjust": adjust,
        "base": base,
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
        diagnostics["values_unadjusted"] = _efficient(plain, v_full - v_empty).tolist()
    else:
        phi = plain
        if n_bootstrap:
            std = _bootstrap_std(masks, values, surrogate, n_bootstrap, seed)
    shift = (v_full - v_empty - phi.sum()) / n
    phi = phi + shift
    diagnostics["efficiency_shift"] = float(shift)
    interactions = surrogate.interactions_.copy()
    np.fill_diagonal(interactions, phi)
    return Attribution(
        values=phi,
        std=std,
        interactions=interactions,
        v_empty=v_empty,
        v_full=v_full,
        method="surrogateshap",
        n_evaluations=int(masks.shape[0]),
        surrogate=surrogate,
        diagnostics=diagnostics,
    )


def _efficient(phi: np.ndarray, total: float) -> np.ndarray:
    return phi + (total - phi.sum()) / phi.size


def _bootstrap_std(masks, values, surrogate: TreeSurrogate, n_bootstrap: int, seed: int) -> np.ndarray:
    """Standard deviation of the surrogate's Shapley values over bootstrap refits."""
    rng = np.random.default_rng([seed, 3])
    sampled = np.arange(2, masks.shape[0])
    boots = []
    for b in range(n_bootstrap):
        rows = np.concatenate([[0, 1], rng.choice(sampled, size=sampled.size, replace=True)])
        refit = TreeSurrogate(params=surrogate.best_params_, cv=0, seed=seed + 1 + b, base=surrogate.base)
        refit.fit(masks[rows], values[rows])
        boots.append(refit.tree_game_.shapley_values())
    return np.std(boots, axis=0, ddof=1)
