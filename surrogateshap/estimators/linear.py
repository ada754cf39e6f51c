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


def constrained_wls(
    masks: np.ndarray, targets: np.ndarray, weights: np.ndarray, total: float, ridge: float = 0.0
) -> np.ndarray:
    """Solve ``min sum w (y - z.phi)^2 + lam |phi|^2`` subject to ``sum(phi) = total`` in closed form.

    ``ridge`` floors the eigenvalues of ``A = Z^T W Z`` at ``ridge`` times their mean (a cap of
    ``1 / ridge`` on its condition number): ``lam = max(0, ridge * trace(A) / n - lambda_min(A))``.
    A well-conditioned design gets ``lam = 0``, the plain least squares (an additive game is then
    recovered exactly); a near-singular one, where the sample holds about as many independent
    coalitions as there are players, is steadied (see
    :data:`~surrogateshap.estimators.surrogate.LINEAR_RIDGE`). Under the constraint the penalty equals
    ``lam |phi - total/n|^2`` up to a constant: it shrinks toward the equal split.

    >>> masks = np.array([[1, 0], [0, 1]], bool)
    >>> constrained_wls(masks, np.array([1.0, 2.0]), np.ones(2), total=4.0)
    array([1.5, 2.5])
    """
    z = masks.astype(np.float64)
    a = (z * weights[:, None]).T @ z
    if ridge:
        lift = ridge * np.trace(a) / a.shape[0] - linalg.eigvalsh(a, subset_by_index=[0, 0])[0]
        if lift > 0:
            a[np.diag_indices_from(a)] += lift
    b = (z * weights[:, None]).T @ targets
    ones = np.ones(z.shape[1])
    try:
        factor = linalg.cho_factor(a)
        a_inv_b, a_inv_1 = linalg.cho_solve(factor, b), linalg.cho_solve(factor, ones)
    except linalg.LinAlgError:
        pinv = linalg.pinvh(a)
        a_inv_b, a_inv_1 = pinv @ b, pinv @ ones
    return a_inv_b - a_inv_1 * (a_inv_b.sum() - total) / a_inv_1.sum()


def kernel_design(masks: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """The Shapley-kernel regression of sampled coalitions: ``(inner, targets, weights, v_empty, total)``.

    ``inner`` selects the rows that are neither the empty nor the full coalition, ``targets`` their
    ``v(S) - v(empty)``, ``weights`` the Shapley kernel mass of each size spread evenly over that
    size's rows (``(n-1) / (s (n-s)) / count_s``), ``total = v(N) - v(empty)``. ``masks`` must hold
    the empty and the full coalition.

    >>> from surrogateshap.coalitions import all_coalitions
    >>> inner, targets, weights, v_empty, total = kernel_design(all_coalitions(2), np.array([0.0, 1.0, 2.0, 4.0]))
    >>> inner.tolist(), weights.tolist(), total
    ([False, True, True, False], [0.5, 0.5], 4.0)
    """
    n = masks.shape[1]
    sizes = masks.sum(axis=1)
    v_empty = float(values[np.argmax(sizes == 0)])
    total = float(values[np.argmax(sizes == n)]) - v_empty
    inner = (sizes > 0) & (sizes < n)
    counts = np.bincount(sizes[inner], minlength=n + 1)
    weights = (n - 1) / (sizes[inner] * (n - sizes[inner])) / counts[sizes[inner]]
    return inner, values[inner] - v_empty, weights, v_empty, total


def fit_linear_base(masks: np.ndarray, values: np.ndarray, ridge: float = 0.0) -> tuple[float, np.ndarray]:
    """The additive game closest to the data in the Shapley-kernel norm: ``(v_empty, coefficients)``.

    Constrained weighted least squares (:func:`constrained_wls`, with its relative ``ridge``) on
    :func:`kernel_design`, the coefficients summing to ``v(N) - v(empty)``. When every coalition is
    present this is exactly the Shapley value; on a sample it is KernelSHAP. ``masks`` must hold the
    empty and the full coalition.

    >>> from surrogateshap.coalitions import all_coalitions
    >>> masks = all_coalitions(3)
    >>> v_empty, phi = fit_linear_base(masks, 1.0 + masks @ np.array([1.0, 2.0, 3.0]))
    >>> v_empty, phi.round(6)
    (1.0, array([1., 2., 3.]))
    """
    n = masks.shape[1]
    inner, targets, weights, v_empty, total = kernel_design(masks, values)
    if not inner.any():
        return v_empty, np.full(n, total / n)
    return v_empty, constrained_wls(masks[inner], targets, weights, total, ridge)


def linearized_std(masks: np.ndarray, values: np.ndarray, phi: np.ndarray, units: list[list[np.ndarray]]) -> np.ndarray:
    """Standard errors of :func:`fit_linear_base`'s coefficients from one factorisation (infinitesimal jackknife).

    ``units`` lists, per size stratum, the row indices of each sampling unit (a coalition, or a
    coalition and its complement). The constrained solution moves by ``P A^-1 g`` when the data
    move by ``g = db - dA phi`` (``P`` projects onto ``sum = 0`` along ``A^-1 1``), so unit ``u``'s
    influence is ``psi_u = P A^-1 sum_{rows of u} w z (y - z.phi)``, divided by ``1 - h_u`` (the unit's
    leverage ``sum_{rows of u} w z.A^-1 z``: its residuals are shrunk by its own pull on the fit, the
    correction that makes this the jackknife's value, as HC3 does for regression errors). Resampling
    units with replacement within each stratum then has variance
    ``sum_h sum_{u in h} (psi_u - mean_h psi)^2``: the stratified bootstrap's, to first order, without
    refitting anything. On games with known values its 2-std intervals cover the truth about as
    often as the bootstrap's (``benchmarks`` and ``tests/test_estimators.py``).

    >>> from surrogateshap.coalitions import all_coalitions
    >>> masks = all_coalitions(3)
    >>> values = masks @ np.array([1.0, 2.0, 3.0])  # additive: no residual, no uncertainty
    >>> phi = fit_linear_base(masks, values)[1]
    >>> linearized_std(masks, values, phi, [[np.array([r]) for r in range(1, 7)]]).round(12)
    array([0., 0., 0.])
    """
    inner, targets, weights, _, _ = kernel_design(masks, values)
    z = masks.astype(np.float64)
    residual = np.zeros(masks.shape[0])
    residual[inner] = weights * (targets - z[inner] @ phi)
    a = (z[inner] * weights[:, None]).T @ z[inner]
    weight = np.zeros(masks.shape[0])
    weight[inner] = weights
    flat = [rows for stratum in units for rows in stratum]
    scores = np.stack([(residual[rows, None] * z[rows]).sum(axis=0) for rows in flat]) if flat else z[:0]
    ones = np.ones(z.shape[1])
    try:
        factor = linalg.cho_factor(a)
        solve = lambda rhs: linalg.cho_solve(factor, rhs)  # noqa: E731
    except linalg.LinAlgError:
        pinv = linalg.pinvh(a)
        solve = pinv.__matmul__
    solved, a_inv_1 = solve(scores.T), solve(ones)
    # each unit's leverage: its residuals are shrunk by the fit, by 1 - h_u (the jackknife's correction)
    hat = np.einsum("ij,ji->i", weight[:, None] * z, solve(z.T))
    leverage = np.array([hat[rows].sum() for rows in flat])
    solved = solved / np.clip(1.0 - leverage, 1e-3, None)
    influence = solved - np.outer(a_inv_1, ones @ solved) / a_inv_1.sum()  # (n, units)
    variance = np.zeros(z.shape[1])
    start = 0
    for stratum in units:
        block = influence[:, start : start + len(stratum)]
        variance += ((block - block.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
        start += len(stratum)
    return np.sqrt(variance)
