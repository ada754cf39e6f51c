"""Games whose Shapley values are known in closed form or computed by hand."""

from __future__ import annotations

import numpy as np

from surrogateshap.games import FunctionGame


def additive(weights):
    w = np.asarray(weights, dtype=np.float64)
    return FunctionGame(lambda m: m @ w, w.size), w


def unanimity(n, members):
    t = np.zeros(n, dtype=bool)
    t[list(members)] = True
    phi = np.where(t, 1.0 / t.sum(), 0.0)
    return FunctionGame(lambda m: (m[:, t].all(axis=1)).astype(float), n), phi


def glove():
    """One left glove (player 0), two right gloves: a pair is worth 1."""
    left, right = np.array([1, 0, 0], bool), np.array([0, 1, 1], bool)
    game = FunctionGame(lambda m: np.minimum(m[:, left].sum(1), m[:, right].sum(1)).astype(float), 3)
    return game, np.array([2 / 3, 1 / 6, 1 / 6])


def weighted_majority():
    """Weights (2, 1, 1, 1), quota 3. By hand: player 0 is pivotal in positions 2 and 3 of 4,
    so phi_0 = 1/2, and the three symmetric small players share the rest: 1/6 each."""
    w = np.array([2, 1, 1, 1], dtype=float)
    return FunctionGame(lambda m: (m @ w >= 3).astype(float), 4), np.array([0.5, 1 / 6, 1 / 6, 1 / 6])


def planted_pair(n=6, i=1, j=4, strength=3.0, seed=0):
    """Additive game plus ``strength`` when both i and j are present: phi_i, phi_j gain strength/2
    and the interaction index of (i, j) is ``strength``, every other pair 0."""
    w = np.random.default_rng(seed).normal(size=n)
    game = FunctionGame(lambda m: m @ w + strength * (m[:, i] & m[:, j]), n)
    phi = w.copy()
    phi[[i, j]] += strength / 2
    inter = np.zeros((n, n))
    inter[i, j] = inter[j, i] = strength
    np.fill_diagonal(inter, phi)
    return game, phi, inter
