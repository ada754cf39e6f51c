"""A game given by a table of coalition values."""

from __future__ import annotations

import numpy as np

from .base import check_masks


class TabularGame:
    """A game whose values are listed for explicit coalitions.

    Parameters
    ----------
    masks : (k, n) bool array of coalitions.
    values : (k,) values, one per coalition.

    Asking for a coalition that is not in the table raises a ValueError that names it.

    >>> game = TabularGame(np.array([[0, 0], [1, 1]], bool), np.array([0.0, 5.0]))
    >>> game(np.array([[1, 1]], bool))
    array([5.])
    """

    def __init__(self, masks: np.ndarray, values: np.ndarray) -> None:
        masks = np.asarray(masks)
        if masks.ndim != 2:
            raise ValueError(f"TabularGame needs masks of shape (k, n), got shape {masks.shape}.")
        self.n_players = int(masks.shape[1])
        masks = check_masks(masks, self.n_players)
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (masks.shape[0],):
            raise ValueError(
                f"TabularGame got {masks.shape[0]} coalitions but values of shape {values.shape}; "
                "give exactly one value per coalition."
            )
        if not np.all(np.isfinite(values)):
            raise ValueError("TabularGame values must all be finite numbers.")
        self.masks = masks
        self.values = values
        self._index: dict[bytes, int] = {}
        for row, key in enumerate(np.packbits(masks, axis=1)):
            self._index.setdefault(key.tobytes(), row)

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        masks = check_masks(masks, self.n_players)
        out = np.empty(masks.shape[0], dtype=np.float64)
        for row, key in enumerate(np.packbits(masks, axis=1)):
            idx = self._index.get(key.tobytes())
            if idx is None:
                members = np.flatnonzero(masks[row]).tolist()
                raise ValueError(
                    f"TabularGame has no value for the coalition of players {members}; "
                    "add it to the table or evaluate only the listed coalitions."
                )
            out[row] = self.values[idx]
        return out
