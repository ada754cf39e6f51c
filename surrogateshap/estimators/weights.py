"""Closed-form weights of the Shapley value and the Shapley interaction index."""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln


def log_comb(n: np.ndarray | int, k: np.ndarray | int) -> np.ndarray:
    """``log C(n, k)`` elementwise (stable for large n).

    >>> float(np.exp(log_comb(5, 2)).round(6))
    10.0
    """
    n = np.asarray(n, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)


def shapley_marginal_weight(n: int, size: np.ndarray) -> np.ndarray:
    """``s! (n-s-1)! / n!``: weight of the marginal contribution to a coalition of size s.

    >>> shapley_marginal_weight(3, np.array([0, 1, 2])) * 6  # 0!2!, 1!1!, 2!0! over 3!
    array([2., 1., 2.])
    """
    size = np.asarray(size)
    return np.exp(-np.log(n) - log_comb(n - 1, size))


def interaction_weight(n: int, size: np.ndarray) -> np.ndarray:
    """``s! (n-s-2)! / (n-1)!``: weight of the pair difference at a coalition of size s.

    >>> interaction_weight(3, np.array([0, 1]))
    array([0.5, 0.5])
    """
    size = np.asarray(size)
    return np.exp(-np.log(n - 1) - log_comb(n - 2, size))
