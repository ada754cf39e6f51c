"""The result of every estimator: values per player, their uncertainty, and interactions."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..io import atomic_write_json, jsonable


@dataclass
class Attribution:
    """Shapley values (or LOO differences) of a game, one per player.

    Attributes
    ----------
    values : (n,) estimated values; ``values.sum() == v_full - v_empty`` (efficiency).
    std : (n,) standard error of each value, or None when the method has none.
    interactions : (n, n) pairwise Shapley interaction index (diagonal: the values), or None.
    v_empty, v_full : the game's value on the empty and the full coalition.
    method : estimator name.
    n_evaluations : distinct coalitions the estimator evaluated.
    players : optional names of the players (contributor ids), in column order.
    surrogate : the fitted surrogate (``.predict(masks)``) for ``method == "surrogateshap"``.
    diagnostics : method-specific facts (surrogate cross-validated R^2, chosen parameters...).

    >>> att = Attribution(np.array([2.0, 1.0]), v_empty=0.0, v_full=3.0, method="exact", n_evaluations=4,
    ...                   players=["ann", "bob"])
    >>> att.efficiency_gap(), att.to_frame()["rank"].tolist()
    (0.0, [1, 2])
    """

    values: np.ndarray
    v_empty: float
    v_full: float
    method: str
    n_evaluations: int
    std: np.ndarray | None = None
    interactions: np.ndarray | None = None
    players: list[str] | None = None
    surrogate: Any = None
    diagnostics: dict[str, Any] = field(default_factory=dict)

    @property
    def n_players(self) -> int:
        """Number of players."""
        return int(self.values.shape[0])

    @property
    def player_names(self) -> list[str]:
        """Player names, defaulting to their column indices."""
        return list(self.players) if self.players is not None else [str(i) for i in range(self.n_players)]

    def efficiency_gap(self) -> float:
        """``sum(values) - (v_full - v_empty)``; zero up to rounding for every method but LOO."""
        return float(self.values.sum() - (self.v_full - self.v_empty))

    def to_frame(self) -> pd.DataFrame:
        """One row per player: value, std, rank (1 = largest value)."""
        frame = pd.DataFrame(
            {
                "player": self.player_names,
                "value": self.values,
                "std": self.std if self.std is not None else np.full(self.n_players, np.nan),
            }
        )
        frame["rank"] = frame["value"].rank(ascending=False, method="min").astype(int)
        return frame.set_index("player")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary of the attribution (the surrogate itself is not serialised)."""
        return {
            "method": self.method,
            "players": self.player_names,
            "values": self.values.tolist(),
            "std": None if self.std is None else self.std.tolist(),
            "interactions": None if self.interactions is None else self.interactions.tolist(),
            "v_empty": float(self.v_empty),
            "v_full": float(self.v_full),
            "n_evaluations": int(self.n_evaluations),
            "diagnostics": jsonable(self.diagnostics),
        }

    def to_json(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_dict` to ``path`` atomically (temporary file, then rename)."""
        atomic_write_json(path, self.to_dict())
