"""EstimatorSettings: which estimator, with which budget, seed and options, and how many held-out coalitions.

The one place where the attribution's defaults live; the config's ``estimator`` section, the
callbacks and the command line all build one of these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ..checks import AUTO_BUDGET, check_int, check_seed
from ..estimators import Estimator, SamplingEstimator, make_estimator
from ..threads import usable_cores

__all__ = ["EstimatorSettings"]


@dataclass(frozen=True)
class EstimatorSettings:
    """How every utility of a bank is attributed.

    Parameters
    ----------
    method : a registered estimator (``surrogateshap.estimators.METHODS``).
    budget : distinct coalitions per utility, the empty and the full one included; None: the
        estimator's default, ``min(2**n, DEFAULT_BUDGET)``; ``"auto"`` (surrogateshap): sampled in rounds
        until the values converge (options ``tolerance``, ``max_budget``).
    seed : seeds the estimator and the held-out coalitions.
    n_holdout : held-out coalitions (datamodel distribution, alpha 0.5) scored for the LDS; 0: none.
    options : settings of the method's estimator class (``cv``, ``std``, ``param_grid``...).
    n_jobs : utilities attributed at once, in as many threads (BLAS and torch then get ``cores // n_jobs``
        threads each; XGBoost uses one); -1: one per core. The values do not depend on it, so it is left
        out of equality.

    Every setting is checked when the object is made, before any bank is generated.

    >>> settings = EstimatorSettings(budget=128, options={"cv": 3})
    >>> settings.estimator()
    SurrogateSHAP(budget=128, cv=3)
    >>> EstimatorSettings.from_config({"method": "kernelshap", "budgett": 64})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown estimator key(s) ['budgett']; the keys are ['budget', 'method', 'n_holdout', ...].
    """

    method: str = "surrogateshap"
    budget: int | str | None = None
    seed: int = 0
    n_holdout: int = 24
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)
    n_jobs: int = field(default=-1, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.options, Mapping):
            raise ValueError(f"estimator options must be a mapping of settings, got {type(self.options).__name__}.")
        object.__setattr__(self, "options", dict(self.options))
        check_seed(self.seed)  # also seeds the held-out coalitions, for methods that take no seed
        check_int(self.n_holdout, "n_holdout", 0)
        if self.n_jobs != -1:
            check_int(self.n_jobs, "n_jobs", 1, hint="Or -1 for one per core.")
        self.estimator()  # refuses an unknown method, option or a bad value now

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | EstimatorSettings | None) -> EstimatorSettings:
        """From a config's ``estimator`` section (None: the defaults); unknown keys are an error listing the keys."""
        if isinstance(section, EstimatorSettings):
            return section
        section = dict(section or {})
        keys = sorted(cls.__dataclass_fields__)
        unknown = sorted(set(section) - set(keys))
        if unknown:
            raise ValueError(f"unknown estimator key(s) {unknown}; the keys are {keys}.")
        if section.get("options") is None:
            section.pop("options", None)
        try:
            return cls(**section)
        except ValueError as err:
            raise ValueError(f"estimator section: {err}") from None

    def estimator(self) -> Estimator:
        """The configured estimator (checked)."""
        return make_estimator(self.method, budget=self.budget, seed=self.seed, **self.options)

    def resolved_budget(self, n_players: int) -> int | str | None:
        """The budget the estimator uses on ``n_players`` (None for methods without one, given none; ``"auto"``)."""
        estimator = self.estimator()
        if self.budget == AUTO_BUDGET:
            return AUTO_BUDGET
        if isinstance(estimator, SamplingEstimator):
            return estimator.budget_for(n_players)
        return None if self.budget is None else int(self.budget)

    def jobs_for(self, n_utilities: int) -> int:
        """How many utilities are attributed at once: ``n_jobs`` (-1: the cores), at most one per utility.

        >>> EstimatorSettings(n_jobs=4).jobs_for(3)
        3
        """
        jobs = usable_cores() if self.n_jobs == -1 else self.n_jobs
        return max(1, min(jobs, n_utilities))

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (for logging them)."""
        return asdict(self)
