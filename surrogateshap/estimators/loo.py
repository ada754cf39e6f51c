"""Leave-one-out values: v(N) - v(N without i)."""

from __future__ import annotations

from ..coalitions import leave_one_out_coalitions
from .base import Estimator
from .result import Attribution


class LeaveOneOut(Estimator):
    """Leave-one-out differences ``v(N) - v(N without i)`` from ``n + 2`` coalitions.

    Not Shapley values: they need not sum to ``v(N) - v(empty)``.

    >>> import numpy as np
    >>> from surrogateshap.games import FunctionGame
    >>> game = FunctionGame(lambda masks: masks.sum(axis=1) ** 2.0, 3)
    >>> LeaveOneOut().estimate(game).values
    array([5., 5., 5.])
    """

    name = "loo"
    efficient = False

    def __init__(self) -> None:
        pass

    def _estimate(self, game: object) -> Attribution:
        cached = self._cached(game)
        values = cached(leave_one_out_coalitions(cached.n_players))
        return Attribution(
            values=values[1] - values[2:],
            v_empty=float(values[0]),
            v_full=float(values[1]),
            method=self.name,
            n_evaluations=cached.n_evaluations,
        )
