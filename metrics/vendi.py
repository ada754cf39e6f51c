"""Vendi score of a coalition's weighted sample mixture under a cosine kernel (diversity).

The Vendi score of order ``q`` is the exponential of the Renyi entropy (order 1: Shannon)
of the eigenvalues of the weighted kernel ``diag(sqrt w) K diag(sqrt w)`` with
``K_xy = cos(e_x, e_y)``. Its nonzero eigenvalues equal those of the ``d x d`` matrix
``sum_x w_x e_x e_x^T`` (unit embeddings ``e``), which is ``alpha @ outer`` for the
per-contributor sums of outer products ``outer`` (C, d, d): those are the sufficient
statistics, and many coalitions are scored with one batched ``eigvalsh``.
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
    embedding_dim : ``d``; when None the state is sized by the first update (give it under DDP).
    max_chunk_elements : bound on the ``k * d * d`` floats formed at once when scoring coalitions.
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
        max_chunk_elements: int = 2**25,
        **kwargs: Any,
    ) -> None:
        super().__init__(feature=feature, **kwargs)
        order = float(order)
        if not order >= 0:
            raise ValueError(f"Vendi order must be >= 0, got {order}.")
        self.order = order
        self.embedding_dim = embedding_dim
        self.max_chunk_elements = int(max_chunk_elements)
        if num_contributors is not None:
            self.set_num_contributors(num_contributors)

    def _init_contributor_states(self, num_contributors: int) -> None:
        d = self.embedding_dim or 0
        self.add_state(
            "outer_sum",
            torch.zeros(num_contributors, d, d, dtype=torch.float64),
            dist_reduce_fx="sum",
            persistent=True,
        )

    def _accumulate(self, data: Tensor, member: Tensor) -> None:
        emb = normalized_embeddings(data)
        d = emb.shape[1]
        if self.outer_sum.shape[1] == 0:
            self.outer_sum = torch.zeros(member.shape[1], d, d, dtype=torch.float64, device=emb.device)
        elif self.outer_sum.shape[1] != d:
            raise ValueError(f"embedding dimension changed from {self.outer_sum.shape[1]} to {d}.")
        # sum_x r_ix e_x e_x^T, one matmul per contributor present in the batch
        for i in torch.nonzero(member.sum(dim=0) > 0).flatten().tolist():
            rows = member[:, i] > 0
            e = emb[rows]
            self.outer_sum[i] += (e * member[rows, i, None]).T @ e

    def merge_state(self, incoming_state: Any) -> None:
        """Merge another metric's (or a state dict's) states (sizes a still-empty state first)."""
        super().merge_state(self._size_lazy_state("outer_sum", incoming_state))

    def _compute_mixture(self, alpha: Tensor, sum_w2: Tensor) -> Tensor:
        c, d = self.outer_sum.shape[0], self.outer_sum.shape[1]
        flat = self.outer_sum.reshape(c, d * d)
        chunk = max(1, self.max_chunk_elements // max(1, d * d))
        out = []
        for k0 in range(0, alpha.shape[0], chunk):
            mix = (alpha[k0 : k0 + chunk] @ flat).reshape(-1, d, d)
            mix = 0.5 * (mix + mix.transpose(1, 2))
            out.append(vendi_from_eigenvalues(torch.linalg.eigvalsh(mix), self.order))
        return torch.cat(out)
