"""Coalition-decomposable torchmetrics utilities (installed as ``surrogateshap.metrics``)."""

from .base import ContributorMetric, membership_matrix

__all__ = ["ContributorMetric", "membership_matrix"]
