"""SurrogateSHAP: training-free contributor attribution for conditional image generators.

Names are imported on first use (PEP 562), so ``surrogateshap --help`` and light imports do
not pay for torch, xgboost and shap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports
from ._version import __version__

_EXPORTS = {
    "Attribution": ".estimators",
    "CachedGame": ".games",
    "CoalitionSample": ".coalitions",
    "ContributorBank": ".bank",
    "EstimatorSettings": ".attribution",
    "FunctionGame": ".games",
    "MoebiusGame": ".games",
    "ProxyGame": ".games",
    "ResponsibilityModel": ".responsibility",
    "SoftMembership": ".membership",
    "TabularGame": ".games",
    "TreeGame": ".estimators",
    "TreeSurrogate": ".estimators",
    "all_coalitions": ".coalitions",
    "attribute_bank": ".attribution",
    "estimate": ".estimators",
    "sample_coalitions": ".coalitions",
}

__all__ = [
    "Attribution",
    "CachedGame",
    "CoalitionSample",
    "ContributorBank",
    "EstimatorSettings",
    "FunctionGame",
    "MoebiusGame",
    "ProxyGame",
    "ResponsibilityModel",
    "SoftMembership",
    "TabularGame",
    "TreeGame",
    "TreeSurrogate",
    "__version__",
    "all_coalitions",
    "attribute_bank",
    "estimate",
    "sample_coalitions",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from .attribution import EstimatorSettings, attribute_bank
    from .bank import ContributorBank
    from .coalitions import CoalitionSample, all_coalitions, sample_coalitions
    from .estimators import Attribution, TreeGame, TreeSurrogate, estimate
    from .games import CachedGame, FunctionGame, MoebiusGame, ProxyGame, TabularGame
    from .membership import SoftMembership
    from .responsibility import ResponsibilityModel

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
