"""Leave-one-out values: v(N) - v(N without i)."""

from __future__ import annotations

from ..coalitions import leave_one_out_coalitions
from ..games import CachedGame
from .attribution import Attribution


def leave_one_out(game: CachedGame) -> Attribution:
    """Leave-one-out differences (not Shapley values: they need not sum to v(N) - v(empty))."""
    n = game.n_players
    values = game(leave_one_out_coalitions(n))
    return Attribution(
        values=values[1] - values[2:],
        v_empty=float(values[0]),
        v_full=float(values[1]),
        method="loo",
        n_evaluations=game.n_evaluations,
    )
