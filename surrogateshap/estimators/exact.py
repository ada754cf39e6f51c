"""Exact Shapley values and pairwise interaction indices by enumerating every coalition."""

from __future__ import annotations

import numpy as np

from ..games import evaluate, n_players_of
from .base import Estimator
from .result import Attribution
from .weights import interaction_weight, shapley_marginal_weight

MAX_EXACT_PLAYERS = 22
_CHUNK = 1 << 16


def enumerate_game(game: object) -> np.ndarray:
    """Values of ``game`` on all ``2**n`` coalitions, indexed by the coalition's bit code.

    >>> from surrogateshap.games import FunctionGame
    >>> enumerate_game(FunctionGame(lambda masks: masks @ np.array([1.0, 10.0]), 2))
    array([ 0.,  1., 10., 11.])
    """
    n = n_players_of(game)
    if n > MAX_EXACT_PLAYERS:
        raise ValueError(
            f"exact enumeration needs 2**{n} game evaluations; it is limited to n <= {MAX_EXACT_PLAYERS} "
            "players. Use method='surrogateshap', 'kernelshap' or 'permutation' with a budget."
        )
    values = np.empty(2**n, dtype=np.float64)
    for start in range(0, 2**n, _CHUNK):
        stop = min(start + _CHUNK, 2**n)
        codes = np.arange(start, stop, dtype=np.int64)
        masks = ((codes[:, None] >> np.arange(n, dtype=np.int64)) & 1).astype(bool)
        values[start:stop] = evaluate(game, masks)
    return values


def shapley_from_table(values: np.ndarray, n: int) -> np.ndarray:
    """Shapley values from a full table of coalition values (index = bit code).

    >>> shapley_from_table(np.array([0.0, 1.0, 1.0, 4.0]), 2)  # v(S) = |S|^2
    array([2., 2.])
    """
    codes = np.arange(2**n, dtype=np.int64)
    sizes = np.bitwise_count(codes)
    phi = np.empty(n, dtype=np.float64)
    for i in range(n):
        without = codes[((codes >> i) & 1) == 0]
        weights = shapley_marginal_weight(n, sizes[without])
        phi[i] = np.dot(weights, values[without | (1 << i)] - values[without])
    return phi


def interactions_from_table(values: np.ndarray, n: int) -> np.ndarray:
    """Pairwise Shapley interaction index from a full table (diagonal left at zero).

    >>> interactions_from_table(np.array([0.0, 1.0, 1.0, 4.0]), 2)
    array([[0., 2.],
           [2., 0.]])
    """
    codes = np.arange(2**n, dtype=np.int64)
    sizes = np.bitwise_count(codes)
    out = np.zeros((n, n), dtype=np.float64)
    for i in range(n):
        for j in range(i + 1, n):
            both = (1 << i) | (1 << j)
            base = codes[(codes & both) == 0]
            weights = interaction_weight(n, sizes[base])
            delta = values[base | both] - values[base | (1 << i)] - values[base | (1 << j)] + values[base]
            out[i, j] = out[j, i] = np.dot(weights, delta)
    return out


class ExactShapley(Estimator):
    """Exact Shapley values by enumerating all ``2**n`` coalitions (n <= 22), and the interaction matrix.

    Parameters
    ----------
    interactions : compute the pairwise Shapley interaction index (n x n, diagonal the values);
        None: for n <= 16.

    >>> from surrogateshap.games import MoebiusGame
    >>> game = MoebiusGame(np.array([[1, 0, 0], [1, 1, 0]], bool), np.array([1.0, 2.0]))
    >>> att = ExactShapley().estimate(game)
    >>> att.values, att.interactions[0, 1]
    (array([2., 1., 0.]), np.float64(2.0))
    """

    name = "exact"

    def __init__(self, interactions: bool | None = None) -> None:
        self.interactions = interactions

    def _estimate(self, game: object) -> Attribution:
        n = n_players_of(game)
        values = enumerate_game(game)
        phi = shapley_from_table(values, n)
        interactions = n <= 16 if self.interactions is None else self.interactions
        inter = None
        if interactions and n >= 2:
            inter = interactions_from_table(values, n)
            np.fill_diagonal(inter, phi)
        return Attribution(
            values=phi,
            v_empty=float(values[0]),
            v_full=float(values[-1]),
            method=self.name,
            n_evaluations=2**n,
            interactions=inter,
        )
