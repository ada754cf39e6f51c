"""KernelSHAP as constrained weighted least squares (Covert & Lee 2021), with Leverage SHAP sampling.

The Shapley values are the additive game closest to ``v`` in the Shapley-kernel norm with
``sum(phi) = v(N) - v(empty)`` (:mod:`surrogateshap.estimators.linear`, closed form, so
efficiency holds exactly). The kernel sums are estimated from the sampled coalitions, size
by size: the samplers draw each size's coalitions uniformly without replacement, so each
sampled coalition of size s stands for ``C(n, s) / count_s`` of them; the sums become exact
when the budget covers every coalition. ``sampling="kernel"`` allocates sizes in proportion
to the Shapley kernel (classic KernelSHAP); ``sampling="leverage"`` allocates them uniformly
over sizes, which is sampling by the leverage scores of the Shapley regression (Leverage
SHAP, Musco & Witter 2025). Both use paired (complementary) sampling by default.

Standard errors: by default the linearisation of the fit (:func:`~surrogateshap.estimators.linear.linearized_std`:
one factorisation of the ``n x n`` kernel system, the first-order value of the stratified bootstrap's);
``std="bootstrap"`` refits on resampled units instead (one factorisation per resample). Both run
with BLAS on one thread: the systems are at most a few thousand wide, and extra threads beside
other busy processes (XGBoost's, a training job) only spin against them.
"""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits

from ..checks import check_int
from ..coalitions import CoalitionSample
from .base import SamplingEstimator
from .linear import fit_linear_base, linearized_std
from .result import Attribution

#: the ``sampling`` choices and the coalition sampler each one uses
KERNEL_SAMPLERS = {"kernel": "shapley", "leverage": "leverage"}
#: the ``std`` choices
STANDARD_ERRORS = ("linearized", "bootstrap", None)


def units_by_stratum(sample: CoalitionSample) -> list[list[np.ndarray]]:
    """For each size stratum, the row indices of each sampling unit (a coalition or a pair).

    >>> from surrogateshap.coalitions import sample_coalitions
    >>> strata = units_by_stratum(sample_coalitions(4, 8, paired=True, seed=0))
    >>> sorted(len(rows) for units in strata for rows in units)  # three pairs
    [2, 2, 2]
    """
    groups: dict[int, dict[int, list[int]]] = {}
    for row in range(2, len(sample)):
        groups.setdefault(int(sample.stratum[row]), {}).setdefault(int(sample.unit[row]), []).append(row)
    return [[np.array(rows) for rows in units.values()] for units in groups.values()]


def _kernel_solve(masks: np.ndarray, values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """KernelSHAP from the sampled ``rows`` plus the empty and full coalition (rows 0 and 1)."""
    rows = np.concatenate([[0, 1], rows])
    return fit_linear_base(masks[rows], values[rows])[1]


class KernelSHAP(SamplingEstimator):
    """KernelSHAP (``sampling="kernel"``) or Leverage SHAP (``sampling="leverage"``) estimates.

    Parameters
    ----------
    budget, seed : see :class:`~surrogateshap.estimators.base.SamplingEstimator`.
    sampling : ``"kernel"`` (sizes by the Shapley kernel) or ``"leverage"`` (uniform over sizes).
    paired : sample every coalition with its complement.
    std : standard errors: ``"linearized"`` (one factorisation), ``"bootstrap"`` (``n_bootstrap`` refits on
        units resampled within each size stratum) or None.
    n_bootstrap : resamples for ``std="bootstrap"``.

    >>> from surrogateshap.games import MoebiusGame
    >>> game = MoebiusGame(np.array([[1, 0, 0, 0], [0, 1, 1, 0]], bool), np.array([1.0, 2.0]))
    >>> KernelSHAP(budget=10, seed=0).estimate(game).values.round(6)  # order 2, paired: exact
    array([1., 1., 1., 0.])
    """

    name = "kernelshap"

    def __init__(
        self,
        budget: int | None = None,
        seed: int = 0,
        sampling: str = "kernel",
        paired: bool = True,
        std: str | None = "linearized",
        n_bootstrap: int = 100,
    ) -> None:
        super().__init__(budget, seed)
        self.sampling = sampling
        self.paired = paired
        self.std = std
        self.n_bootstrap = n_bootstrap

    def _check(self) -> None:
        if self.sampling not in KERNEL_SAMPLERS:
            raise ValueError(f"kernelshap sampling must be one of {sorted(KERNEL_SAMPLERS)}, got {self.sampling!r}.")
        if self.std not in STANDARD_ERRORS:
            raise ValueError(f"kernelshap std must be one of {STANDARD_ERRORS}, got {self.std!r}.")
        check_int(self.n_bootstrap, "n_bootstrap", 2 if self.std == "bootstrap" else 0,
                  hint="std='bootstrap' takes the spread of at least two refits.")

    def _estimate(self, game: object) -> Attribution:
        game = self._cached(game)
        n = game.n_players
        if n == 1:
            values = game(np.array([[False], [True]]))
            return Attribution(np.array([values[1] - values[0]]), float(values[0]), float(values[1]),
                               self.name, game.n_evaluations)
        sample = self._sample(n, KERNEL_SAMPLERS[self.sampling], self.paired)
        if len(sample) <= 2:
            raise ValueError(
                f"budget={self.budget_for(n)} leaves no sampled coalition besides the empty and the full one; "
                f"kernelshap needs a budget of at least {2 + (2 if self.paired else 1)}."
            )
        values = game(sample.masks)
        with threadpool_limits(limits=1):
            phi = _kernel_solve(sample.masks, values, np.arange(2, len(sample)))
            std = None
            if self.std == "linearized":
                std = linearized_std(sample.masks, values, phi, units_by_stratum(sample))
            elif self.std == "bootstrap" and self.n_bootstrap:
                std = self._bootstrap_std(
                    lambda rows, b: _kernel_solve(sample.masks, values, rows), units_by_stratum(sample),
                    self.n_bootstrap, stream=1,
                )
        return Attribution(
            values=phi,
            std=std,
            v_empty=float(values[0]),
            v_full=float(values[1]),
            method=self.name,
            n_evaluations=game.n_evaluations,
            diagnostics={"sampling": self.sampling, "paired": self.paired, "std": self.std,
                         "n_coalitions": len(sample)},
        )
