"""Closed-form weights of the Shapley value and the Shapley interaction index."""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln


def log_comb(n: np.ndarray | int, k: np.ndarray | int) -> np.ndarray:
    """``log C(n, k)`` elementwise (stable for large n)."""
    n = np.asarray(n, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)


def shapley_marginal_weight(n: int, size: np.ndarray) -> np.ndarray:
    """``s! (n-s-1)! / n!``: weight of the marginal contribution to a coalition of size s."""
    size = np.asarray(size)
    return np.exp(-np.log(n) - log_comb(n - 1, size))


def interaction_weight(n: int, size: np.ndarray) -> np.ndarray:
    """``s! (n-s-2)! / (n-1)!``: weight of the pair difference at a coalition of size s."""
    size = np.asarray(size)
    return np.exp(-np.log(n - 1) - log_comb(n - 2, size))
