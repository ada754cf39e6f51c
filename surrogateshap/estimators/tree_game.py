"""Exact game-theoretic decomposition of a tree ensemble on 0/1 inputs.

On a binary input ``z`` every root-to-leaf path of a tree requires some features present
(P) and some absent (A); the ensemble is ``f(z) = c + sum_paths v * prod_{P} z_j * prod_{A} (1 - z_j)``.
Each path term is a small game whose Shapley values and pairwise Shapley interaction
indices have closed forms (Beta functions of ``p = |P|`` and ``a = |A|``), derived from
its Moebius (Harsanyi) coefficients ``m(P u B) = v (-1)^{|B|}`` for ``B`` a subset of A:

- Shapley value: ``v B(p, a+1)`` for ``i`` in P, ``-v B(p+1, a)`` for ``i`` in A;
- interaction index ``I_ij = sum_{T >= {i,j}} m(T) / (|T|-1)``: ``v B(p-1, a+1)`` for ``i, j``
  in P, ``-v B(p, a)`` for one in P and one in A, ``v B(p+1, a-1)`` for both in A.

Summing over paths gives the exact Shapley values and interaction matrix of the game
``S -> f(1_S)``: the quantity interventional TreeSHAP with an all-zeros background computes
(shap's own interaction values are unavailable in that mode). We parse XGBoost's JSON model
ourselves because no library exposes this decomposition.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass

import numpy as np
from scipy.special import beta

from ..games.synthetic import sum_of_terms


@dataclass(frozen=True)
class TreeGame:
    """The game ``S -> f(1_S)`` of a tree ensemble ``f``, as a sum of path terms.

    Attributes
    ----------
    present, absent : (L, n) bool, the features each path term requires present / absent.
    leaf_values : (L,) the term's value (paths with identical requirements merged).
    intercept : the constant term (base score plus paths with no requirement).
    linear : (n,) coefficients of an additive part ``z . linear`` (a linear base margin the
        trees were boosted from), or None.

    >>> # one path: +2 when player 0 is present and player 1 absent, on top of a constant 1
    >>> game = TreeGame(np.array([[1, 0]], bool), np.array([[0, 1]], bool), np.array([2.0]), intercept=1.0)
    >>> game(np.array([[1, 0], [1, 1]], bool)), game.shapley_values()
    (array([3., 1.]), array([ 1., -1.]))
    """

    present: np.ndarray
    absent: np.ndarray
    leaf_values: np.ndarray
    intercept: float
    linear: np.ndarray | None = None

    @property
    def n_players(self) -> int:
        """Number of players (input features)."""
        return int(self.present.shape[1])

    @classmethod
    def additive(cls, n_features: int, intercept: float, linear: np.ndarray) -> TreeGame:
        """A game with no trees: ``intercept + z . linear``."""
        empty = np.zeros((0, n_features), dtype=bool)
        return cls(empty, empty, np.zeros(0), float(intercept), np.asarray(linear, dtype=np.float64))

    @classmethod
    def from_xgboost(cls, booster, n_features: int, f_empty: float, linear: np.ndarray | None = None) -> TreeGame:
        """Decompose an ``xgboost.Booster`` trained on 0/1 features.

        ``f_empty`` is the model's prediction on the all-zeros row (base margin included); it
        fixes the intercept without parsing XGBoost's base-score encoding. ``linear`` is the
        additive part of a linear base margin the trees were boosted from.
        """
        model = json.loads(booster.save_raw("json"))
        terms: dict[tuple[bytes, bytes], float] = {}
        for tree in model["learner"]["gradient_booster"]["model"]["trees"]:
            _collect_paths(tree, n_features, terms)
        keys = list(terms)
        present = np.array([np.unpackbits(np.frombuffer(k[0], np.uint8))[:n_features] for k in keys], bool)
        absent = np.array([np.unpackbits(np.frombuffer(k[1], np.uint8))[:n_features] for k in keys], bool)
        values = np.array([terms[k] for k in keys], dtype=np.float64)
        if not keys:
            present = absent = np.zeros((0, n_features), dtype=bool)
        # f(0) = intercept + sum of the terms that need nothing present.
        at_zero = values[~present.any(axis=1)].sum() if keys else 0.0
        return cls(present, absent, values, float(f_empty) - float(at_zero), linear)

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        """Evaluate the ensemble on coalition masks from the path terms (in bounded chunks)."""
        masks = np.asarray(masks, dtype=bool)
        linear = self.intercept + masks.astype(np.float64) @ self._linear()
        return linear + sum_of_terms(masks, self.present, self.leaf_values, absent=self.absent)

    def shapley_values(self) -> np.ndarray:
        """Exact Shapley values of ``S -> f(1_S)``; they sum to ``f(1) - f(0)``."""
        p, a, v = self._sizes()
        with np.errstate(divide="ignore", invalid="ignore"):
            c_present = np.where(p > 0, v * beta(p, a + 1), 0.0)
            c_absent = np.where(a > 0, -v * beta(p + 1, a), 0.0)
        trees = self.present.T.astype(np.float64) @ c_present + self.absent.T.astype(np.float64) @ c_absent
        return trees + self._linear()

    def interaction_index(self) -> np.ndarray:
        """Pairwise Shapley interaction index (n, n); the diagonal holds the Shapley values."""
        p, a, v = self._sizes()
        with np.errstate(divide="ignore", invalid="ignore"):
            pp = np.where(p >= 2, v * beta(p - 1, a + 1), 0.0)
            pa = np.where((p >= 1) & (a >= 1), -v * beta(p, a), 0.0)
            aa = np.where(a >= 2, v * beta(p + 1, a - 1), 0.0)
        zp = self.present.astype(np.float64)
        za = self.absent.astype(np.float64)
        cross = (zp * pa[:, None]).T @ za
        out = (zp * pp[:, None]).T @ zp + (za * aa[:, None]).T @ za + cross + cross.T
        np.fill_diagonal(out, self.shapley_values())
        return out

    def moebius(self, max_order: int = 2) -> tuple[np.ndarray, np.ndarray]:
        """Moebius (Harsanyi) coefficients of every coalition of size <= ``max_order``.

        Returns ``(masks, coefficients)`` with ``f(1_S) = sum_{T subset of S} m(T)``, the
        empty coalition (row 0) carrying ``f(0)``. Terms of higher order are left out.
        """
        n = self.n_players
        coef: dict[bytes, float] = {np.packbits(np.zeros(n, bool)).tobytes(): self.intercept}
        for pres, abs_, value in zip(self.present, self.absent, self.leaf_values):
            base = np.flatnonzero(pres)
            if base.size > max_order:
                continue
            extra = np.flatnonzero(abs_)
            for k in range(0, min(extra.size, max_order - base.size) + 1):
                for chosen in itertools.combinations(extra.tolist(), k):
                    mask = pres.copy()
                    mask[list(chosen)] = True
                    key = np.packbits(mask).tobytes()
                    coef[key] = coef.get(key, 0.0) + value * (-1) ** k
        for player, slope in enumerate(self._linear()):
            if slope and max_order >= 1:
                mask = np.zeros(n, dtype=bool)
                mask[player] = True
                key = np.packbits(mask).tobytes()
                coef[key] = coef.get(key, 0.0) + slope
        masks = np.array([np.unpackbits(np.frombuffer(k, np.uint8))[:n] for k in coef], dtype=bool)
        return masks, np.array(list(coef.values()))

    def _linear(self) -> np.ndarray:
        return np.zeros(self.n_players) if self.linear is None else self.linear

    def _sizes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (
            self.present.sum(axis=1).astype(np.float64),
            self.absent.sum(axis=1).astype(np.float64),
            self.leaf_values,
        )


def _collect_paths(tree: dict, n: int, terms: dict[tuple[bytes, bytes], float]) -> None:
    """Add every leaf of one XGBoost JSON tree as a (present, absent) -> value term."""
    left, right = tree["left_children"], tree["right_children"]
    feature, threshold = tree["split_indices"], tree["split_conditions"]
    stack = [(0, np.zeros(n, bool), np.zeros(n, bool))]
    while stack:
        node, pres, abs_ = stack.pop()
        if left[node] == -1:
            key = (np.packbits(pres).tobytes(), np.packbits(abs_).tobytes())
            terms[key] = terms.get(key, 0.0) + float(threshold[node])
            continue
        j, t = feature[node], threshold[node]
        # XGBoost sends x to the left child when x < threshold.
        zero_left, one_left = 0.0 < t, 1.0 < t
        if zero_left == one_left:
            stack.append((left[node] if zero_left else right[node], pres, abs_))
            continue
        absent_child, present_child = (left[node], right[node]) if zero_left else (right[node], left[node])
        if not pres[j]:
            new_abs = abs_.copy()
            new_abs[j] = True
            stack.append((absent_child, pres, new_abs))
        if not abs_[j]:
            new_pres = pres.copy()
            new_pres[j] = True
            stack.append((present_child, new_pres, abs_))
