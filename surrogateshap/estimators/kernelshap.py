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

from ..coalitions import CoalitionSample, sample_coalitions
from ..games import CachedGame
from .attribution import Attribution
from .linear import fit_linear_base

KERNEL_SAMPLERS = {"kernel": "shapley", "leverage": "leverage"}


def _kernel_solve(sample: CoalitionSample, values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """KernelSHAP from the sampled ``rows`` plus the empty and full coalition (rows 0 and 1)."""
    rows = np.concatenate([[0, 1], rows])
    return fit_linear_base(sample.masks[rows], values[rows])[1]


def _units_by_stratum(sample: CoalitionSample) -> list[list[np.ndarray]]:
    """For each size stratum, the row indices of each sampling unit (a coalition or a pair)."""
    groups: dict[int, dict[int, list[int]]] = {}
    for row in range(2, len(sample)):
        groups.setdefault(int(sample.stratum[row]), {}).setdefault(int(sample.unit[row]), []).append(row)
    return [[np.array(rows) for rows in units.values()] for units in groups.values()]


def _bootstrap_rows(strata: list[list[np.ndarray]], rng: np.random.Generator) -> np.ndarray:
    """Resample sampling units with replacement within each size stratum."""
    picked = [units[i] for units in strata for i in rng.integers(0, len(units), size=len(units))]
    return np.concatenate(picked)


def kernel_shap(
    game: CachedGame,
    budget: int,
    seed: int = 0,
    sampling: str = "kernel",
    paired: bool = True,
    n_bootstrap: int = 100,
) -> Attribution:
    """KernelSHAP (``sampling="kernel"``) or Leverage SHAP (``sampling="leverage"``) estimates.

    ``std`` comes from ``n_bootstrap`` bootstrap resamples of the sampled units (pairs),
    within each size stratum (0 turns it off).
    """
    if sampling not in KERNEL_SAMPLERS:
        raise ValueError(f"kernelshap sampling must be one of {sorted(KERNEL_SAMPLERS)}, got {sampling!r}.")
    n = game.n_players
    if n == 1:
        values = game(np.array([[False], [True]]))
        return Attribution(np.array([values[1] - values[0]]), float(values[0]), float(values[1]),
                           "kernelshap", game.n_evaluations)
    sample = sample_coalitions(n, budget, KERNEL_SAMPLERS[sampling], seed=seed, paired=paired)
    if len(sample) <= 2:
        raise ValueError(
            f"budget={budget} leaves no sampled coalition besides the empty and the full one; "
            f"kernelshap needs a budget of at least {2 + (2 if paired else 1)}."
        )
    values = game(sample.masks)
    rows = np.arange(2, len(sample))
    phi = _kernel_solve(sample, values, rows)
    std = None
    if n_bootstrap:
        rng = np.random.default_rng([seed, 1])
        strata = _units_by_stratum(sample)
        boots = [_kernel_solve(sample, values, _bootstrap_rows(strata, rng)) for _ in range(n_bootstrap)]
        std = np.std(boots, axis=0, ddof=1)
    return Attribution(
        values=phi,
        std=std,
        v_empty=float(values[0]),
        v_full=float(values[1]),
        method="kernelshap",
        n_evaluations=game.n_evaluations,
        diagnostics={"sampling": sampling, "paired": paired, "n_coalitions": len(sample)},
    )
