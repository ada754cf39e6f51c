"""Synthetic games with closed-form Shapley values, for checks and benchmarks."""

from __future__ import annotations

import numpy as np

from .base import check_masks


def sum_of_terms(
    masks: np.ndarray, present: np.ndarray, coefficients: np.ndarray, absent: np.ndarray | None = None
) -> np.ndarray:
    """``sum_t c_t [present_t inside S and absent_t outside S]`` for every coalition ``S`` of ``masks``.

    ``present`` / ``absent`` are (terms, n) bool. Coalitions are taken in chunks with matrix
    products, so memory is O(chunk x terms) whatever the number of coalitions.

    >>> masks = np.array([[1, 1, 0], [1, 0, 1]], bool)
    >>> sum_of_terms(masks, np.array([[1, 0, 0]], bool), np.array([2.0]), absent=np.array([[0, 1, 0]], bool))
    array([0., 2.])
    """
    z = np.asarray(masks, dtype=np.float64)
    need = present.sum(axis=1)
    present = present.T.astype(np.float64)
    absent = None if absent is None else absent.T.astype(np.float64)
    out = np.zeros(z.shape[0])
    step = max(1, (1 << 24) // max(1, need.size))
    for start in range(0, z.shape[0], step):
        chunk = z[start : start + step]
        hit = chunk @ present == need  # every member the term needs is in S
        if absent is not None:
            hit &= chunk @ absent == 0  # and none it needs absent
        out[start : start + step] = hit.astype(np.float64) @ coefficients
    return out


class MoebiusGame:
    """``v(S) = sum over terms T contained in S of m(T)``: a game given by its Moebius coefficients.

    Its Shapley values are ``phi_i = sum_{T containing i} m(T) / |T|`` and its pairwise
    Shapley interaction index ``I_ij = sum_{T containing i, j} m(T) / (|T| - 1)``.

    >>> game = MoebiusGame(np.array([[1, 1, 0]], bool), np.array([3.0]), constant=1.0)  # v(S) = 1 + 3 [0, 1 in S]
    >>> game(np.array([[1, 1, 0], [1, 0, 1]], bool)), game.shapley_values()
    (array([4., 1.]), array([1.5, 1.5, 0. ]))
    """

    def __init__(self, terms: np.ndarray, coefficients: np.ndarray, constant: float = 0.0) -> None:
        self.terms = np.asarray(terms, dtype=bool)
        self.coefficients = np.asarray(coefficients, dtype=np.float64)
        if self.terms.ndim != 2 or self.coefficients.shape != (self.terms.shape[0],):
            raise ValueError("terms must be (m, n) bool and coefficients (m,).")
        if (self.terms.sum(axis=1) == 0).any():
            raise ValueError("put the empty term in `constant`, not among the terms.")
        self.constant = float(constant)
        self.n_players = int(self.terms.shape[1])

    @classmethod
    def random(cls, n: int, order: int, n_terms: int, seed: int = 0, scale: float = 1.0) -> MoebiusGame:
        """Random terms of sizes 1..order (all n singletons included) with normal coefficients.

        Higher-order coefficients are scaled by ``1/size`` so that no order dominates.
        """
        rng = np.random.default_rng(seed)
        terms = [np.eye(n, dtype=bool)]
        coefs = [rng.normal(size=n) * scale]
        for _ in range(n_terms):
            size = int(rng.integers(2, order + 1))
            mask = np.zeros(n, dtype=bool)
            mask[rng.choice(n, size=size, replace=False)] = True
            terms.append(mask[None])
            coefs.append(rng.normal(size=1) * scale * 2.0 / size)
        return cls(np.concatenate(terms), np.concatenate(coefs))

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        masks = check_masks(masks, self.n_players)
        return self.constant + sum_of_terms(masks, self.terms, self.coefficients)

    def shapley_values(self) -> np.ndarray:
        """Closed-form Shapley values."""
        sizes = self.terms.sum(axis=1)
        return self.terms.T.astype(np.float64) @ (self.coefficients / sizes)

    def interaction_index(self) -> np.ndarray:
        """Closed-form pairwise Shapley interaction index (diagonal: Shapley values)."""
        sizes = self.terms.sum(axis=1)
        weight = np.where(sizes >= 2, self.coefficients / np.maximum(sizes - 1, 1), 0.0)
        z = self.terms.astype(np.float64)
        out = (z * weight[:, None]).T @ z
        np.fill_diagonal(out, self.shapley_values())
        return out
