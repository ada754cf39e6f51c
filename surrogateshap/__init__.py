"""SurrogateSHAP: training-free contributor attribution for conditional image generators."""

from .coalitions import CoalitionSample, all_coalitions, sample_coalitions
from .estimators import Attribution, TreeGame, TreeSurrogate, estimate
from .games import CachedGame, FunctionGame, TabularGame

__version__ = "0.1.0"

__all__ = [
    "Attribution",
    "CachedGame",
    "CoalitionSample",
    "FunctionGame",
    "TabularGame",
    "TreeGame",
    "TreeSurrogate",
    "__version__",
    "all_coalitions",
    "estimate",
    "sample_coalitions",
]
