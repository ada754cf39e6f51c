"""Games: callables on (k, n) bool coalition masks with an ``n_players`` attribute."""

from .base import CachedGame, FunctionGame, Game, check_masks, evaluate, n_players_of
from .proxy import ProxyGame
from .synthetic import MoebiusGame
from .tabular import TabularGame

__all__ = [
    "CachedGame",
    "FunctionGame",
    "Game",
    "MoebiusGame",
    "ProxyGame",
    "TabularGame",
    "check_masks",
    "evaluate",
    "n_players_of",
]
