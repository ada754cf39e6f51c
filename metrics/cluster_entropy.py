"""Cluster-histogram entropy of a coalition's weighted mixture (product diversity, fashion setting).

The training images' embeddings are Ward-clustered once (``k`` clusters, 20 in the paper);
each generated sample is assigned to its nearest cluster centre (Euclidean); a coalition's
value is the entropy in bits of its weighted cluster histogram, between 0 and ``log2 k``.
Per contributor the state is a ``k``-bin histogram of membership-weighted counts, and the
coalition's normalised histogram is ``alpha @ hist``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .base import ContributorMetric


def fit_ward_centers(train_embeddings: Tensor | np.ndarray, n_clusters: int = 20) -> Tensor:
    """Ward-cluster training embeddings ``(M, d)`` into ``n_clusters``; return the cluster means (float64).

    >>> fit_ward_centers(np.array([[0.0], [0.2], [10.0], [10.4]]), 2)
    tensor([[10.2000],
            [ 0.1000]], dtype=torch.float64)
    """
    from sklearn.cluster import AgglomerativeClustering

    x = np.asarray(torch.as_tensor(train_embeddings).detach().cpu().to(torch.float64))
    if x.ndim != 2:
        raise ValueError(f"training embeddings must have shape (M, d), got {x.shape}.")
    if not 1 <= n_clusters <= x.shape[0]:
        raise ValueError(
            f"n_clusters must be in [1, {x.shape[0]}] (number of training embeddings), got {n_clusters}."
        )
    labels = AgglomerativeClustering(n_clusters=n_clusters, linkage="ward").fit_predict(x)
    centers = np.stack([x[labels == j].mean(axis=0) for j in range(n_clusters)])
    return torch.from_numpy(centers)


def nearest_center(embeddings: Tensor, centers: Tensor, chunk: int = 4096) -> Tensor:
    """Index of the nearest centre (Euclidean, float64) for each row of ``embeddings`` ``(N, d)``.

    >>> nearest_center(torch.tensor([[1.0], [8.0]]), torch.tensor([[0.0], [10.0]]))
    tensor([0, 1])
    """
    x = torch.as_tensor(embeddings).to(device=centers.device, dtype=torch.float64)
    c = centers.to(torch.float64)
    out = [
        torch.cdist(x[i : i + chunk], c, compute_mode="donot_use_mm_for_euclid_dist").argmin(dim=1)
        for i in range(0, x.shape[0], chunk)
    ]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long, device=centers.device)


class ContributorClusterEntropy(ContributorMetric):
    """Entropy (bits) of the cluster histogram of a coalition's weighted mixture; higher is better.

    Parameters
    ----------
    feature : bank array with the embeddings ``(N, d)`` of generated samples.
    centers : cluster centres ``(k, d)``, e.g. from :func:`fit_ward_centers` on the training
        images' embeddings (or use :meth:`from_training_embeddings`).
    n_clusters : number of clusters; checked against ``len(centers)`` when given.
    num_contributors, kwargs : as for :class:`ContributorMetric`.

    >>> metric = ContributorClusterEntropy(feature="embedding", centers=np.array([[0.0], [10.0]]), num_contributors=2)
    >>> metric.update(torch.tensor([[0.1], [9.0], [0.2], [0.3]]), torch.tensor([0, 0, 1, 1]))
    >>> metric.compute_coalitions(np.array([[1, 0], [1, 1]], bool), np.ones(2))  # 1 bit; 3:1 over the clusters
    tensor([1.0000, 0.8113], dtype=torch.float64)
    """

    higher_is_better = True
    centers: Tensor

    def __init__(
        self,
        feature: str = "embedding",
        centers: Tensor | np.ndarray | None = None,
        n_clusters: int | None = None,
        num_contributors: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(feature=feature, **kwargs)
        if centers is None:
            raise ValueError(
                "ContributorClusterEntropy needs cluster centres: fit them on the training images' "
                "embeddings with ContributorClusterEntropy.from_training_embeddings(train_embeddings, "
                "n_clusters=20) or pass centers=fit_ward_centers(train_embeddings, 20)."
            )
        centers_t = torch.as_tensor(np.asarray(centers), dtype=torch.float64)
        if centers_t.ndim != 2 or centers_t.shape[0] < 1:
            raise ValueError(f"centers must have shape (k, d) with k >= 1, got {tuple(centers_t.shape)}.")
        if n_clusters is not None and n_clusters != centers_t.shape[0]:
            raise ValueError(f"n_clusters={n_clusters} but {centers_t.shape[0]} centres were given.")
        self.n_clusters = int(centers_t.shape[0])
        self.register_buffer("centers", centers_t, persistent=True)
        if num_contributors is not None:
            self.set_num_contributors(num_contributors)

    @classmethod
    def from_training_embeddings(
        cls, train_embeddings: Tensor | np.ndarray, n_clusters: int = 20, **kwargs: Any
    ) -> ContributorClusterEntropy:
        """Fit Ward centres on the training embeddings once and build the metric with them."""
        return cls(centers=fit_ward_centers(train_embeddings, n_clusters), **kwargs)

    def _init_contributor_states(self, num_contributors: int) -> None:
        self.add_state(
            "histogram",
            torch.zeros(num_contributors, self.n_clusters, dtype=torch.float64),
            dist_reduce_fx="sum",
            persistent=True,
        )

    def _accumulate(self, data: Tensor, member: Tensor) -> None:
        if data.ndim != 2 or data.shape[1] != self.centers.shape[1]:
            raise ValueError(
                f"embeddings must have shape (N, {self.centers.shape[1]}) like the centres, "
                f"got {tuple(data.shape)}."
            )
        assign = nearest_center(data, self.centers)
        onehot = torch.nn.functional.one_hot(assign, self.n_clusters).to(torch.float64)
        self.histogram += member.T @ onehot.to(member.device)

    def _compute_mixture(self, alpha: Tensor, sum_w2: Tensor) -> Tensor:
        p = alpha @ self.histogram  # (k, n_clusters), rows sum to 1
        p = p / p.sum(dim=1, keepdim=True)
        return -torch.special.xlogy(p, p).sum(dim=1) / math.log(2.0)
