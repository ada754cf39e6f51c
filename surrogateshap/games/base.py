"""The game protocol: a callable on coalition masks, plus validation and caching.

A game is any object with an attribute ``n_players`` that maps a ``(k, n)`` boolean
numpy array of coalition masks to ``k`` floats. Estimators only ever talk to games
through :func:`evaluate`, which checks both sides of that contract.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

import numpy as np

from ..checks import check_int


@runtime_checkable
class Game(Protocol):
    """A cooperative game: ``game(masks) -> values`` on ``(k, n_players)`` bool masks.

    >>> isinstance(FunctionGame(lambda masks: masks.sum(axis=1), 3), Game)
    True
    """

    n_players: int

    def __call__(self, masks: np.ndarray) -> np.ndarray: ...


def n_players_of(game: object) -> int:
    """Return ``game.n_players`` as a positive int, or raise a ValueError that says what is missing.

    >>> n_players_of(FunctionGame(lambda masks: masks.sum(axis=1), 3))
    3
    """
    n = getattr(game, "n_players", None)
    if n is None:
        raise ValueError(
            f"{type(game).__name__} has no attribute 'n_players': a game must say how many players it has "
            "(set game.n_players = n, or wrap a plain function with surrogateshap.FunctionGame(fn, n))."
        )
    return check_int(n, "game.n_players", 1)


def check_masks(masks: object, n_players: int) -> np.ndarray:
    """Check that ``masks`` is a ``(k, n_players)`` bool numpy array and return it.

    Raises a ValueError naming the problem (type, number of dimensions, width or dtype).

    >>> check_masks(np.zeros((2, 3), bool), 3).shape
    (2, 3)
    >>> check_masks(np.zeros((2, 3)), 3)
    Traceback (most recent call last):
    ...
    ValueError: coalition masks must have dtype bool, got float64; ...
    """
    if not isinstance(masks, np.ndarray):
        raise ValueError(
            f"coalition masks must be a numpy array of dtype bool and shape (k, {n_players}), "
            f"got {type(masks).__name__}; build them with np.asarray(..., dtype=bool)."
        )
    if masks.ndim != 2:
        raise ValueError(
            f"coalition masks must have shape (k, {n_players}), got an array with {masks.ndim} "
            f"dimension(s) of shape {masks.shape}; use masks[None, :] for a single coalition."
        )
    if masks.shape[1] != n_players:
        raise ValueError(
            f"coalition masks have {masks.shape[1]} columns but the game has {n_players} players; "
            "there must be one column per player."
        )
    if masks.dtype != np.bool_:
        raise ValueError(
            f"coalition masks must have dtype bool, got {masks.dtype}; convert with masks.astype(bool) "
            "after checking the entries are 0/1."
        )
    return masks


def evaluate(game: object, masks: np.ndarray) -> np.ndarray:
    """Evaluate ``game`` on ``masks`` and check the answer: ``k`` finite floats (float64).

    >>> evaluate(FunctionGame(lambda masks: masks.sum(axis=1), 2), np.array([[True, True]]))
    array([2.])
    """
    n = n_players_of(game)
    masks = check_masks(masks, n)
    if masks.shape[0] == 0:
        return np.zeros(0, dtype=np.float64)
    raw = game(masks)
    if np.iscomplexobj(raw):
        raise ValueError(f"{type(game).__name__} returned complex values; a game must return real numbers "
                         "(take .real or abs() in the utility if that is what it means).")
    values = np.asarray(raw, dtype=np.float64)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.shape != (masks.shape[0],):
        raise ValueError(
            f"{type(game).__name__} returned values of shape {np.shape(raw)} for {masks.shape[0]} "
            f"coalitions; a game must return one float per coalition, shape ({masks.shape[0]},)."
        )
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        first = bad[0]
        members = np.flatnonzero(masks[first]).tolist()
        raise ValueError(
            f"{type(game).__name__} returned {values[first]} (not a finite number) for {bad.size} "
            f"coalition(s), first for players {members}; fix the utility so it is defined on every "
            "coalition (for the empty coalition, pass v_empty)."
        )
    return values


class FunctionGame:
    """Turn a plain function on masks into a game by attaching ``n_players``.

    >>> game = FunctionGame(lambda masks: masks @ np.array([1.0, 2.0]), 2)
    >>> game.n_players, game(np.array([[True, True]]))
    (2, array([3.]))
    """

    def __init__(self, fn, n_players: int) -> None:
        if not callable(fn):
            raise TypeError(f"FunctionGame needs a function of the masks, got {type(fn).__name__}.")
        self.fn = fn
        self.n_players = check_int(n_players, "n_players", 1)

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        return self.fn(masks)


class CachedGame:
    """Wrap a game so that each distinct coalition is evaluated once.

    ``n_evaluations`` counts the distinct coalitions passed to the wrapped game and ``seconds``
    the wall-clock time spent inside it. Repeated rows in one call and rows seen in earlier
    calls are answered from the cache.

    >>> game = CachedGame(FunctionGame(lambda masks: masks.sum(axis=1), 3))
    >>> masks = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 1]], bool)
    >>> game(masks), game.n_evaluations
    (array([1., 1., 2.]), 2)
    """

    def __init__(self, game: object) -> None:
        self.game = game
        self.n_players = n_players_of(game)
        self.seconds = 0.0
        self._cache: dict[bytes, float] = {}

    @property
    def n_evaluations(self) -> int:
        """Number of distinct coalitions evaluated so far."""
        return len(self._cache)

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        masks = check_masks(masks, self.n_players)
        packed = np.packbits(masks, axis=1)
        keys = [row.tobytes() for row in packed]
        missing: dict[bytes, int] = {}
        for row, key in enumerate(keys):
            if key not in self._cache and key not in missing:
                missing[key] = row
        if missing:
            rows = np.fromiter(missing.values(), dtype=np.int64, count=len(missing))
            start = time.perf_counter()
            new_values = evaluate(self.game, masks[rows])
            self.seconds += time.perf_counter() - start
            self._cache.update(zip(missing.keys(), new_values.tolist()))
        return np.array([self._cache[key] for key in keys], dtype=np.float64)
