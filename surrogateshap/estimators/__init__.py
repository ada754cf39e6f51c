"""Shapley estimators behind one entry point, :func:`estimate`."""

from __future__ import annotations

from typing import Any

from ..games import CachedGame, n_players_of
from .attribution import Attribution
from .exact import MAX_EXACT_PLAYERS, exact_shapley
from .kernelshap import kernel_shap
from .loo import leave_one_out
from .permutation import permutation_shapley
from .surrogate import PAPER_DEFAULT, PAPER_GRID, TreeSurrogate
from .surrogate_shap import surrogate_shap
from .tree_game import TreeGame

METHODS = ("surrogateshap", "kernelshap", "permutation", "exact", "loo")
DEFAULT_BUDGET = 512


def estimate(game: object, method: str = "surrogateshap", budget: int | None = None, seed: int = 0,
             **options: Any) -> Attribution:
    """Estimate the Shapley value of every player of ``game``.

    Parameters
    ----------
    game : a callable on ``(k, n)`` bool masks returning ``k`` floats, with ``n_players``.
    method : ``"surrogateshap"`` (XGBoost surrogate + exact TreeSHAP; options of
        :func:`~surrogateshap.estimators.surrogate_shap.surrogate_shap`: ``sampler``,
        ``paired``, ``params``, ``param_grid``, ``cv``, ``n_bootstrap``, ``adjust="msr"``, ``base="linear"``),
        ``"kernelshap"`` (options ``sampling="kernel"|"leverage"``, ``paired``,
        ``n_bootstrap``), ``"permutation"`` (``antithetic``, ``max_permutations``),
        ``"exact"`` (``interactions``; n <= 22) or ``"loo"`` (leave-one-out).
    budget : the number of distinct coalitions the method may evaluate, the empty and the
        full coalition included. Default: ``min(2**n, 512)``; ignored by ``exact`` (2**n)
        and ``loo`` (n + 2).
    seed : seeds every random draw.

    Returns an :class:`Attribution`; ``sum(values) == v_full - v_empty`` for every method
    but ``loo``.
    """
    n = n_players_of(game)
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}.")
    if budget is not None and (isinstance(budget, bool) or int(budget) != budget or budget < 2):
        raise ValueError(
            f"budget must be an integer of at least 2 (the empty and the full coalition count toward it), "
            f"got {budget!r}."
        )
    if method == "exact":
        _reject_options(method, options, {"interactions"})
        return exact_shapley(game, **options)
    cached = game if isinstance(game, CachedGame) else CachedGame(game)
    if method == "loo":
        _reject_options(method, options, set())
        return leave_one_out(cached)
    budget = int(budget) if budget is not None else min(2**n, DEFAULT_BUDGET)
    if method == "permutation":
        _reject_options(method, options, {"antithetic", "max_permutations"})
        return permutation_shapley(cached, budget, seed=seed, **options)
    if method == "kernelshap":
        _reject_options(method, options, {"sampling", "paired", "n_bootstrap"})
        return kernel_shap(cached, budget, seed=seed, **options)
    _reject_options(
        method, options, {"sampler", "paired", "params", "param_grid", "cv", "n_bootstrap", "adjust", "base"}
    )
    return surrogate_shap(cached, budget, seed=seed, **options)


def _reject_options(method: str, options: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(
            f"method {method!r} does not take option(s) {unknown}; it accepts {sorted(allowed) or 'none'}."
        )


__all__ = [
    "Attribution",
    "DEFAULT_BUDGET",
    "MAX_EXACT_PLAYERS",
    "METHODS",
    "PAPER_DEFAULT",
    "PAPER_GRID",
    "TreeGame",
    "TreeSurrogate",
    "estimate",
]
