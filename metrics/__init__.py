"""Coalition-decomposable torchmetrics utilities (installed as ``surrogateshap.metrics``)."""

from .aesthetic import AestheticScorer, ContributorAestheticScore, LaionAestheticMLP, load_aesthetic_head
from .base import ContributorMetric, MissingSamplesError, membership_matrix
from .cluster_entropy import ContributorClusterEntropy, fit_ward_centers
from .correlation import ContributorCorrelation
from .extractors import CleanFIDInception, HFImageEmbedding
from .fid import ContributorFID, frechet_distance_batch, load_reference_statistics, save_reference_statistics
from .inception_score import ContributorInceptionScore
from .mean import ContributorMean
from .paired_lpips import ContributorPairedLPIPS, PairedLPIPSScorer
from .pairwise import ContributorMeanPairwiseDistance
from .rate import ContributorRate
from .vendi import ContributorVendiScore

__all__ = [
    "AestheticScorer",
    "CleanFIDInception",
    "ContributorAestheticScore",
    "ContributorClusterEntropy",
    "ContributorCorrelation",
    "ContributorFID",
    "ContributorInceptionScore",
    "ContributorMean",
    "ContributorMeanPairwiseDistance",
    "ContributorMetric",
    "ContributorPairedLPIPS",
    "ContributorRate",
    "ContributorVendiScore",
    "HFImageEmbedding",
    "LaionAestheticMLP",
    "MissingSamplesError",
    "PairedLPIPSScorer",
    "fit_ward_centers",
    "frechet_distance_batch",
    "load_aesthetic_head",
    "load_reference_statistics",
    "membership_matrix",
    "save_reference_statistics",
]
