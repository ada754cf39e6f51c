"""The attribution service: (bank, utilities, v_empty, estimator settings, membership) -> values and their document.

>>> from surrogateshap.attribution import EstimatorSettings, attribute_bank  # doctest: +SKIP
>>> result = attribute_bank(bank, {"fid": ContributorFID(...)}, {"fid": base_bank}, EstimatorSettings(budget=256))
>>> result.write("out/")   # attribution.json, attribution.csv, plots, report.md
"""

from .document import UtilityResult, attribution_document
from .service import AttributionResult, attribute_bank, contributor_entries, holdout_coalitions, resolve_v_empty
from .settings import EstimatorSettings

__all__ = [
    "AttributionResult",
    "EstimatorSettings",
    "UtilityResult",
    "attribute_bank",
    "attribution_document",
    "contributor_entries",
    "holdout_coalitions",
    "resolve_v_empty",
]
