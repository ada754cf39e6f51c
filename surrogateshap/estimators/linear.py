"""Additive (linear) fits of a game: constrained weighted least squares in the Shapley-kernel norm.

Among additive games ``g(S) = v(empty) + sum_{i in S} beta_i`` with ``sum(beta) = v(N) - v(empty)``,
the one closest to ``v`` in the Shapley-kernel weighted norm over all coalitions has
``beta`` = the Shapley values of ``v`` (Charnes et al. 1988; Lundberg & Lee 2017). With
``A = sum k(S) 1_S 1_S^T`` and ``b = sum k(S) 1_S (v(S) - v(empty))`` the constrained solution is
``A^{-1} (b - 1 (1^T A^{-1} b - v(N) + v(empty)) / (1^T A^{-1} 1))`` (Covert & Lee 2021).
"""

from __future__ import annotations

import numpy as np
from scipy import linalg


def constrained_wls(masks: np.ndarray, targets: np.ndarray, weights: np.ndarray, total: float) -> np.ndarray:
    """Solve ``min sum w (y - z.phi)^2`` subject to ``sum(phi) = total`` in closed form.

    >>> masks = np.array([[1, 0], [0, 1]], bool)
    >>> constrained_wls(masks, np.array([1.0, 2.0]), np.ones(2), total=4.0)
    array([1.5, 2.5])
    """
    z = masks.astype(np.float64)
    a = (z * weights[:, None]).T @ z
    b = (z * weights[:, None]).T @ targets
    ones = np.ones(z.shape[1])
    try:
        factor = linalg.cho_factor(a)
        a_inv_b, a_inv_1 = linalg.cho_solve(factor, b), linalg.cho_solve(factor, ones)
    except linalg.LinAlgError:
        pinv = linalg.pinvh(a)
        a_inv_b, a_inv_1 = pinv @ b, pinv @ ones
    return a_inv_b - a_inv_1 * (a_inv_b.sum() - total) / a_inv_1.sum()


def fit_linear_base(masks: np.ndarray, values: np.ndarray) -> tuple[float, np.ndarray]:
    """The additive game closest to the data in the Shapley-kernel norm: ``(v_empty, coefficients)``.

    Constrained weighted least squares (:func:`constrained_wls`) with the Shapley kernel mass
    of each size spread evenly over that size's rows (the sampled coalitions of a size are a
    uniform draw, so each stands for ``C(n, s) / count_s`` coalitions), and the coefficients
    summing to ``v(N) - v(empty)``. When every coalition is present this is exactly the
    Shapley value; on a sample it is KernelSHAP. ``masks`` must hold the empty and the full
    coalition.

    >>> from surrogateshap.coalitions import all_coalitions
    >>> masks = all_coalitions(3)
    >>> v_empty, phi = fit_linear_base(masks, 1.0 + masks @ np.array([1.0, 2.0, 3.0]))
    >>> v_empty, phi.round(6)
    (1.0, array([1., 2., 3.]))
    """
    n = masks.shape[1]
    sizes = masks.sum(axis=1)
    v_empty = float(values[np.argmax(sizes == 0)])
    total = float(values[np.argmax(sizes == n)]) - v_empty
    inner = (sizes > 0) & (sizes < n)
    if not inner.any():
        return v_empty, np.full(n, total / n)
    counts = np.bincount(sizes[inner], minlength=n + 1)
    weights = (n - 1) / (sizes[inner] * (n - sizes[inner])) / counts[sizes[inner]]
    return v_empty, constrained_wls(masks[inner], values[inner] - v_empty, weights, total)
