"""The attribution service: (bank, utilities, v_empty, estimator settings, membership) -> values and their document.

>>> import numpy as np
>>> from surrogateshap.bank import ContributorBank
>>> from surrogateshap.metrics import ContributorMean
>>> bank = ContributorBank({"score": np.arange(6.0)}, ["a", "a", "b", "b", "c", "c"])
>>> result = attribute_bank(bank, {"mean": ContributorMean(feature="score")}, {"mean": 0.0},
...                         EstimatorSettings(method="exact", n_holdout=0), progress=False)
>>> [round(v, 3) for v in result.document["utilities"]["mean"]["values"]]
[-0.667, 0.833, 2.333]
>>> sorted(result.write("out"))[:3]  # the document and everything drawn from it
['attribution.csv', 'attribution.json', 'interactions_mean.png']
"""

from .document import UtilityResult, attribution_document
from .service import (
    AttributionResult,
    attribute_bank,
    check_v_empty,
    contributor_entries,
    holdout_coalitions,
    resolve_v_empty,
)
from .settings import EstimatorSettings

__all__ = [
    "AttributionResult",
    "EstimatorSettings",
    "UtilityResult",
    "attribute_bank",
    "attribution_document",
    "check_v_empty",
    "contributor_entries",
    "holdout_coalitions",
    "resolve_v_empty",
]
