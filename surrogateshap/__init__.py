"""SurrogateSHAP: training-free contributor attribution for conditional image generators."""

__version__ = "0.1.0"

from .bank import ContributorBank  # noqa: E402
from .coalitions import CoalitionSample, all_coalitions, sample_coalitions  # noqa: E402
from .estimators import Attribution, TreeGame, TreeSurrogate, estimate  # noqa: E402
from .games import CachedGame, FunctionGame, MoebiusGame, ProxyGame, TabularGame  # noqa: E402

__all__ = [
    "Attribution",
    "CachedGame",
    "CoalitionSample",
    "ContributorBank",
    "FunctionGame",
    "MoebiusGame",
    "ProxyGame",
    "TabularGame",
    "TreeGame",
    "TreeSurrogate",
    "__version__",
    "all_coalitions",
    "estimate",
    "sample_coalitions",
]
