"""Shapley estimators: one small class per method over a shared base, behind one entry point, :func:`estimate`.

A class registers itself under its ``name`` when it is defined (importing its module below is
the one line that adds a method); :data:`METHODS` lists the registered names.
"""

from __future__ import annotations

from typing import Any

from ..checks import check_budget
from .base import DEFAULT_BUDGET, ESTIMATORS, Estimator, SamplingEstimator, estimator_class
from .exact import MAX_EXACT_PLAYERS, ExactShapley
from .kernelshap import KernelSHAP
from .loo import LeaveOneOut
from .permutation import PermutationShapley
from .result import Attribution
from .surrogate import DEFAULT_GRID, PAPER_DEFAULT, PAPER_GRID, TreeSurrogate, default_grid
from .surrogate_shap import SurrogateSHAP
from .tree_game import TreeGame

#: the methods shipped with the package (``estimate``'s default is "surrogateshap"); a subclass defined later
#: registers in ``ESTIMATORS``, which ``estimate`` reads
METHODS = tuple(ESTIMATORS)


def make_estimator(method: str = "surrogateshap", budget: int | str | None = None, seed: int = 0,
                   **options: Any) -> Estimator:
    """The estimator ``method`` with these settings, checked (a ValueError names a bad one).

    ``budget`` and ``seed`` go to the methods that take them (``exact`` and ``loo`` take neither);
    ``options`` must be settings of the method's class.

    >>> make_estimator("kernelshap", budget=64, sampling="leverage")
    KernelSHAP(budget=64, sampling='leverage')
    >>> make_estimator("loo", budget=64)
    LeaveOneOut()
    """
    cls = estimator_class(method)
    check_budget(budget, auto=True)  # each class refuses "auto" unless it offers it
    accepted = cls.param_names()
    common = {k: v for k, v in {"budget": budget, "seed": seed}.items() if k in accepted}
    refused = sorted(set(options) & {"budget", "seed"})
    if refused:
        raise ValueError(f"give {refused} as argument(s) of their own, not among the method's options.")
    return cls.from_options(**common, **options).check()


def estimate(game: object, method: str = "surrogateshap", budget: int | str | None = None, seed: int = 0,
             **options: Any) -> Attribution:
    """Estimate the Shapley value of every player of ``game``.

    Parameters
    ----------
    game : a callable on ``(k, n)`` bool masks returning ``k`` floats, with ``n_players``.
    method : a registered method (:data:`METHODS`): ``"surrogateshap"``
        (:class:`SurrogateSHAP`: ``sampler``, ``paired``, ``params``, ``param_grid``, ``cv``,
        ``max_trees``, ``std``, ``n_bootstrap``, ``adjust``, ``base``, ``tolerance``,
        ``max_budget``), ``"kernelshap"``
        (:class:`KernelSHAP`: ``sampling="kernel"|"leverage"``, ``paired``, ``std``, ``n_bootstrap``), ``"permutation"``
        (:class:`PermutationShapley`: ``antithetic``, ``max_permutations``), ``"exact"``
        (:class:`ExactShapley`: ``interactions``; n <= 22) or ``"loo"`` (:class:`LeaveOneOut`).
    budget : the number of distinct coalitions the method may evaluate, the empty and the
        full coalition included. Default: ``min(2**n, DEFAULT_BUDGET)``; ignored by ``exact``
        (2**n) and ``loo`` (n + 2). ``"auto"`` (``surrogateshap``): coalitions in rounds until the
        standard errors fall below ``tolerance`` of the values' spread, at most ``max_budget``.
    seed : seeds every random draw.
    options : settings of the method's class.

    Returns an :class:`Attribution`; ``sum(values) == v_full - v_empty`` for every method
    but ``loo``.

    >>> import numpy as np
    >>> from surrogateshap.games import FunctionGame
    >>> game = FunctionGame(lambda masks: masks @ np.array([1.0, 2.0, 3.0]), 3)
    >>> estimate(game, "kernelshap", budget=8).values.round(6)
    array([1., 2., 3.])
    """
    return make_estimator(method, budget=budget, seed=seed, **options).estimate(game)


__all__ = [
    "Attribution",
    "DEFAULT_BUDGET",
    "DEFAULT_GRID",
    "ESTIMATORS",
    "Estimator",
    "ExactShapley",
    "KernelSHAP",
    "LeaveOneOut",
    "MAX_EXACT_PLAYERS",
    "METHODS",
    "PAPER_DEFAULT",
    "PAPER_GRID",
    "PermutationShapley",
    "SamplingEstimator",
    "SurrogateSHAP",
    "TreeGame",
    "TreeSurrogate",
    "default_grid",
    "estimate",
    "estimator_class",
    "make_estimator",
]
