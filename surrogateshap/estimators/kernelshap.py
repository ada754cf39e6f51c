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
"""

from __future__ import annotations

import numpy as np

from ..checks import check_int
from ..coalitions import CoalitionSample
from .base import SamplingEstimator
from .linear import fit_linear_base
from .result import Attribution

#: the ``sampling`` choices and the coalition sampler each one uses
KERNEL_SAMPLERS = {"kernel": "shapley", "leverage": "leverage"}


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
    n_bootstrap : bootstrap resamples of the sampled units (pairs), within each size stratum, for
        ``std`` (0 turns it off).

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
        n_bootstrap: int = 100,
    ) -> None:
        super().__init__(budget, seed)
        self.sampling = sampling
        self.paired = paired
        self.n_bootstrap = n_bootstrap

    def _check(self) -> None:
        if self.sampling not in KERNEL_SAMPLERS:
            raise ValueError(f"kernelshap sampling must be one of {sorted(KERNEL_SAMPLERS)}, got {self.sampling!r}.")
        check_int(self.n_bootstrap, "n_bootstrap", 0)

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
        phi = _kernel_solve(sample.masks, values, np.arange(2, len(sample)))
        std = None
        if self.n_bootstrap:
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
            diagnostics={"sampling": self.sampling, "paired": self.paired, "n_coalitions": len(sample)},
        )
