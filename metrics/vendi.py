"""Vendi score of a coalition's weighted sample mixture under a cosine kernel (diversity).

The Vendi score of order ``q`` is the exponential of the Renyi entropy (order 1: Shannon)
of the eigenvalues of the weighted kernel ``diag(sqrt w) K diag(sqrt w)`` with
``K_xy = cos(e_x, e_y)``: with ``Y_x = sqrt(w_x) e_x`` over the coalition's ``K`` samples (unit
embeddings ``e``), the eigenvalues of ``Y Y^T`` (``K x K``), whose nonzero ones are those of
``Y^T Y = sum_x w_x e_x e_x^T`` (``d x d``). The metric keeps the unit embeddings (``O(N d)``) and
takes whichever matrix is smaller, per coalition.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from .base import ContributorMetric
from .pairwise import normalized_embeddings


def vendi_from_eigenvalues(eigenvalues: Tensor, order: float = 1.0) -> Tensor:
    """Vendi score of order ``order`` from eigenvalues ``(..., n)`` summing to 1 along the last axis.

    Order 1 is ``exp(-sum l log l)``; order ``q`` is ``(sum l^q)^(1 / (1 - q))``; ``inf`` is
    ``1 / max l``; order 0 counts the eigenvalues above ``1e-10``.

    >>> vendi_from_eigenvalues(torch.tensor([0.5, 0.5, 0.0]))
    tensor(2.)
    """
    lam = eigenvalues.clamp_min(0.0)
    lam = lam / lam.sum(dim=-1, keepdim=True)
    if order == 1:
        return torch.exp(-torch.special.xlogy(lam, lam).sum(dim=-1))
    if math.isinf(order):
        return 1.0 / lam.amax(dim=-1)
    if order == 0:
        return (lam > 1e-10).sum(dim=-1).to(lam.dtype)
    positive = torch.where(lam > 0, lam, torch.zeros_like(lam))
    return torch.exp(torch.log((positive**order).sum(dim=-1)) / (1.0 - order))


class ContributorVendiScore(ContributorMetric):
    """Vendi score (order ``order``) of each coalition's weighted mixture, cosine kernel on embeddings.

    Higher is better (more diverse); it lies between 1 and ``min(d, number of samples)``.

    Parameters
    ----------
    feature : bank array with the embeddings ``(N, d)``.
    order : Vendi order ``q >= 0`` (1: Shannon, the usual Vendi score; ``inf``: 1 / largest eigenvalue).
    embedding_dim : ``d``, checked on every update when given.
    num_contributors, kwargs : as for :class:`ContributorMetric`.

    >>> import numpy as np
    >>> metric = ContributorVendiScore(feature="embedding", num_contributors=2)
    >>> # contributor 0: two copies of one image; contributor 1: two different ones
    >>> metric.update(torch.eye(3)[[0, 0, 1, 2]], torch.tensor([0, 0, 1, 1]))
    >>> metric.compute_coalitions(np.array([[1, 0], [0, 1], [1, 1]], bool), np.ones(2))
    tensor([1.0000, 2.0000, 2.8284], dtype=torch.float64)
    """

    higher_is_better = True

    def __init__(
        self,
        feature: str = "embedding",
        order: float = 1.0,
        num_contributors: int | None = None,
        embedding_dim: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(feature=feature, **kwargs)
        order = float(order)
        if not order >= 0:
            raise ValueError(f"Vendi order must be >= 0, got {order}.")
        self.order = order
        self.embedding_dim = embedding_dim
        if num_contributors is not None:
            self.set_num_contributors(num_contributors)

    def _init_contributor_states(self, num_contributors: int) -> None:
        self._add_sample_states()

    def _accumulate(self, data: Tensor, member: Tensor) -> None:
        emb = normalized_embeddings(data)
        d = emb.shape[1]
        expected = self.embedding_dim or (self.samples[0].shape[1] if self.samples else d)
        if d != expected:
            raise ValueError(f"embedding dimension changed from {expected} to {d}.")
        self._store_samples(emb, member)

    def _compute_mixture(self, alpha: Tensor, sum_w2: Tensor) -> Tensor:
        embeddings = self._stored_samples()[0]
        weights = self._sample_weights(alpha)
        out = []
        for j in range(alpha.shape[0]):
            rows = torch.nonzero(weights[:, j] > 0)[:, 0]
            y = embeddings[rows]  # a copy (advanced indexing), weighted in place
            y *= weights[rows, j].sqrt()[:, None]
            gram = y @ y.T if rows.numel() < embeddings.shape[1] else y.T @ y
            out.append(vendi_from_eigenvalues(torch.linalg.eigvalsh((gram + gram.T) / 2), self.order))
        return torch.stack(out)
