"""The base of every Shapley estimator: settings as constructor parameters, one registry, sampling and bootstrap.

An estimator is a small class in the way of scikit-learn's (every setting a constructor parameter
stored as given, ``get_params`` / ``clone`` work, checks happen in :meth:`Estimator.estimate`, not in
``__init__``) and of shapiq's approximators (the base holds the budget, the seed and the coalition
sampler; each method a short subclass). Defining a subclass with a ``name`` registers it, so
:func:`surrogateshap.estimate` and every configuration accept that name; :data:`METHODS` lists them.
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator

from ..checks import AUTO_BUDGET, check_budget, check_seed
from ..coalitions import CoalitionSample, sample_coalitions
from ..games import CachedGame, n_players_of
from .result import Attribution

__all__ = ["DEFAULT_BUDGET", "ESTIMATORS", "Estimator", "SamplingEstimator", "estimator_class"]

#: float64 (budget, n) matrices an estimator may hold at once (masks, design, weights, copies): the memory bound
DESIGN_COPIES = 4


def _memory_bytes() -> int:
    """This machine's physical memory in bytes."""
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


#: budget of a sampling estimator when none is given (capped at the game's 2**n coalitions)
DEFAULT_BUDGET = 512
#: name -> estimator class, filled as subclasses are defined (:meth:`Estimator.__init_subclass__`)
ESTIMATORS: dict[str, type[Estimator]] = {}


def estimator_class(method: str) -> type[Estimator]:
    """The registered estimator class called ``method``, or a ValueError listing the choices.

    >>> estimator_class("kernelshap").__name__
    'KernelSHAP'
    """
    if method not in ESTIMATORS:
        raise ValueError(f"unknown method {method!r}; choose one of {tuple(ESTIMATORS)}.")
    return ESTIMATORS[method]


class Estimator(BaseEstimator):
    """Base class of the Shapley estimators.

    Subclasses set the class attribute ``name`` (the method name of :func:`surrogateshap.estimate`),
    take their settings as ``__init__`` parameters stored unchanged, and implement
    ``_estimate(game) -> Attribution``; ``_check()`` may raise a ValueError for a bad setting.

    >>> from surrogateshap.estimators import ExactShapley
    >>> from surrogateshap.games import FunctionGame
    >>> game = FunctionGame(lambda masks: masks.sum(axis=1) ** 2.0, 3)
    >>> ExactShapley().estimate(game).values
    array([3., 3., 3.])
    >>> sorted(ExactShapley.param_names())
    ['interactions']
    """

    name: ClassVar[str] = ""
    #: whether the values sum to ``v_full - v_empty`` (leave-one-out differences do not)
    efficient: ClassVar[bool] = True
    #: whether ``budget="auto"`` is offered (sampling in rounds until the values converge)
    auto_budget: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):
            ESTIMATORS[cls.name] = cls

    @classmethod
    def param_names(cls) -> list[str]:
        """The settings the estimator takes (its ``__init__`` parameters)."""
        params = inspect.signature(cls.__init__).parameters
        return [p for p in params if p != "self"]

    @classmethod
    def from_options(cls, **options: Any) -> Estimator:
        """Build from keyword options, refusing any the class does not take (the message lists those it does).

        >>> from surrogateshap.estimators import KernelSHAP
        >>> KernelSHAP.from_options(budget=64, sampling="leverage")
        KernelSHAP(budget=64, sampling='leverage')
        """
        accepted = cls.param_names()
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise ValueError(
                f"method {cls.name!r} does not take option(s) {unknown}; it accepts {sorted(accepted) or 'none'}."
            )
        return cls(**options)

    def check(self) -> Estimator:
        """Raise a ValueError for a bad setting (before any game is evaluated); returns self."""
        if "budget" in self.param_names():
            check_budget(self.budget, auto=self.auto_budget)
        if "seed" in self.param_names():
            check_seed(self.seed)
        self._check()
        return self

    def estimate(self, game: object) -> Attribution:
        """The values of every player of ``game`` (a callable on (k, n) bool masks with ``n_players``)."""
        n_players_of(game)
        self.check()
        return self._estimate(game)

    @staticmethod
    def _cached(game: object) -> CachedGame:
        return game if isinstance(game, CachedGame) else CachedGame(game)

    # subclass hooks -------------------------------------------------------------------
    def _check(self) -> None:
        """Check the subclass's own settings."""

    def _estimate(self, game: object) -> Attribution:
        raise NotImplementedError


class SamplingEstimator(Estimator):
    """Base of the estimators that evaluate a budget of sampled coalitions: budget, seed, sampler, bootstrap.

    ``budget`` counts distinct coalitions, the empty and the full one included; None is
    ``min(2**n, DEFAULT_BUDGET)``. Every random draw comes from ``seed``: the coalition sampler
    from ``seed`` itself, any other stream ``k`` from ``numpy.random.default_rng([seed, k])``.

    >>> from surrogateshap.estimators import KernelSHAP
    >>> KernelSHAP(budget=64, seed=3).get_params()["seed"]
    3
    """

    def __init__(self, budget: int | None = None, seed: int = 0) -> None:
        self.budget = budget
        self.seed = seed

    def budget_for(self, n_players: int) -> int:
        """The budget used on a game of ``n_players``: ``budget``, or ``min(2**n, DEFAULT_BUDGET)``.

        A budget above the game's ``2**n`` distinct coalitions is capped there, with a warning (every
        coalition is then evaluated once: the values are exact). A budget whose coalition design would
        not fit in half of this machine's memory (``DESIGN_COPIES`` float64 copies of a budget x n
        matrix) is refused before any evaluation, with the largest budget that fits.

        >>> from surrogateshap.estimators import KernelSHAP
        >>> KernelSHAP().budget_for(4), KernelSHAP().budget_for(20), KernelSHAP(budget=100).budget_for(20)
        (16, 512, 100)
        """
        n_coalitions = 2 ** int(n_players)
        if self.budget is None:
            return min(n_coalitions, DEFAULT_BUDGET)
        if self.budget == AUTO_BUDGET:
            raise ValueError(f"{type(self).__name__} chooses its budget in rounds; it has no fixed budget.")
        if self.budget > n_coalitions:
            warnings.warn(
                f"budget {self.budget} is more than the {n_coalitions} distinct coalitions of {n_players} players; "
                f"using {n_coalitions} (every coalition once, so the values are exact).", stacklevel=2,
            )
            return n_coalitions
        self._check_memory(int(self.budget), int(n_players))
        return int(self.budget)

    @staticmethod
    def _check_memory(budget: int, n_players: int) -> None:
        """Refuse a budget whose coalition design would not fit in half of this machine's memory."""
        need = budget * n_players * 8 * DESIGN_COPIES
        have = _memory_bytes() // 2
        if need > have:
            largest = have // (n_players * 8 * DESIGN_COPIES)
            raise ValueError(
                f"budget {budget} on {n_players} players needs about {need / 2**30:.0f} GiB for the coalition design, "
                f"more than half of this machine's {2 * have / 2**30:.0f} GiB; give a budget of at most {largest}."
            )

    def _rng(self, stream: int | None = None) -> np.random.Generator:
        return np.random.default_rng(self.seed if stream is None else [self.seed, stream])

    def _sample(self, n: int, sampler: str, paired: bool) -> CoalitionSample:
        return sample_coalitions(n, self.budget_for(n), sampler, seed=self.seed, paired=paired)

    def _bootstrap_std(
        self,
        statistic: Callable[[np.ndarray, int], np.ndarray],
        strata: Sequence[Sequence[np.ndarray]],
        n_bootstrap: int,
        stream: int,
    ) -> np.ndarray:
        """Standard deviation of ``statistic(rows, b)`` over ``n_bootstrap`` resamples.

        Each resample draws, within every stratum, as many sampling units (arrays of row indices:
        a coalition, or a coalition and its complement) as the stratum has, with replacement.
        """
        rng = self._rng(stream)
        boots = []
        for b in range(n_bootstrap):
            picked = [units[i] for units in strata for i in rng.integers(0, len(units), size=len(units))]
            boots.append(statistic(np.concatenate(picked), b))
        return np.std(boots, axis=0, ddof=1)
