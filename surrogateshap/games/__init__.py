"""Games: callables on (k, n) bool coalition masks with an ``n_players`` attribute."""

from .base import CachedGame, FunctionGame, Game, check_masks, evaluate, n_players_of
from .tabular import TabularGame

__all__ = ["CachedGame", "FunctionGame", "Game", "TabularGame", "check_masks", "evaluate", "n_players_of"]
