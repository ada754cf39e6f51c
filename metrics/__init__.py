"""Coalition-decomposable torchmetrics utilities (installed as ``surrogateshap.metrics``)."""

from .aesthetic import AestheticScorer, ContributorAestheticScore, LaionAestheticMLP, load_aesthetic_head
from .base import ContributorMetric, membership_matrix
from .extractors import CleanFIDInception
from .fid import ContributorFID, frechet_distance_batch, load_reference_statistics, save_reference_statistics
from .inception_score import ContributorInceptionScore
from .mean import ContributorMean
from .rate import ContributorRate

__all__ = [
    "AestheticScorer",
    "CleanFIDInception",
    "ContributorAestheticScore",
    "ContributorFID",
    "ContributorInceptionScore",
    "ContributorMean",
    "ContributorMetric",
    "ContributorRate",
    "LaionAestheticMLP",
    "frechet_distance_batch",
    "load_aesthetic_head",
    "load_reference_statistics",
    "membership_matrix",
    "save_reference_statistics",
]
