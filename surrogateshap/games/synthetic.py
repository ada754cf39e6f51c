"""Synthetic games with closed-form Shapley values, for checks and benchmarks."""

from __future__ import annotations

import numpy as np

from .base import check_masks


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
        z = masks.astype(np.float64)
        terms = self.terms.T.astype(np.float64)
        sizes = self.terms.sum(axis=1)
        out = np.full(masks.shape[0], self.constant)
        step = max(1, (1 << 24) // max(1, sizes.size))  # O(step x terms) memory, whatever n
        for start in range(0, masks.shape[0], step):
            contains = z[start : start + step] @ terms == sizes  # every member of the term is in S
            out[start : start + step] += contains.astype(np.float64) @ self.coefficients
        return out

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
