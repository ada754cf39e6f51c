"""Weighted mean of a per-sample score: the simplest coalition-decomposable utility."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .base import ContributorMetric


class ContributorMean(ContributorMetric):
    """Mixture-weighted mean of a per-sample scalar score ``(N,)`` (or ``(N, 1)``).

    State: per contributor the membership-weighted sum of scores (float64). A coalition's
    value is ``alpha @ sum_scores`` = ``sum_x w_x s_x`` with ``sum_x w_x = 1``.
    ``higher_is_better`` says which direction of the score is good (None: the class's own, True
    here, False for subclasses scoring a cost).

    >>> import numpy as np
    >>> metric = ContributorMean(feature="score", num_contributors=2)
    >>> metric.update(torch.tensor([1.0, 3.0, 10.0]), torch.tensor([0, 0, 1]))
    >>> metric.compute()  # every sample weighted equally
    tensor(4.6667, dtype=torch.float64)
    >>> metric.compute_coalitions(np.array([[1, 0], [1, 1]], bool), np.array([1.0, 1.0]))  # 1:1 mixture
    tensor([2., 6.], dtype=torch.float64)
    """

    higher_is_better = True

    def __init__(
        self, feature: str, num_contributors: int | None = None, higher_is_better: bool | None = None, **kwargs: Any
    ) -> None:
        super().__init__(feature=feature, num_contributors=num_contributors, **kwargs)
        if higher_is_better is not None:
            # torchmetrics guards ``higher_is_better`` as a class constant; the direction of a score is a
            # per-instance choice, so set it past the guard (an instance attribute shadows the class one)
            object.__setattr__(self, "higher_is_better", bool(higher_is_better))

    def _init_contributor_states(self, num_contributors: int) -> None:
        self.add_state(
            "sum_scores", torch.zeros(num_contributors, dtype=torch.float64), dist_reduce_fx="sum", persistent=True
        )

    def _accumulate(self, data: Tensor, member: Tensor) -> None:
        if data.ndim == 2 and data.shape[1] == 1:
            data = data[:, 0]
        if data.ndim != 1:
            raise ValueError(
                f"{type(self).__name__} expects one score per sample, shape (N,) or (N, 1); got {tuple(data.shape)}."
            )
        scores = data.to(torch.float64)
        if not torch.isfinite(scores).all():
            raise ValueError(f"{type(self).__name__} got NaN or infinite scores.")
        self.sum_scores += member.T @ scores

    def _compute_mixture(self, alpha: Tensor, sum_w2: Tensor) -> Tensor:
        return alpha @ self.sum_scores
