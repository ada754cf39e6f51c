"""Coalition-decomposable Inception Score (one split).

For a mixture with sample weights ``w_x`` (summing to 1) and class probabilities ``p(y|x)``::

    IS = exp( sum_x w_x KL(p(.|x) || pbar) ),   pbar = sum_x w_x p(.|x)
       = exp( sum_x w_x sum_y p log p  -  sum_y pbar log pbar )

so per contributor it suffices to keep the membership-weighted sum of ``p`` ``(C, K)`` and of
``sum_y p log p`` ``(C,)`` (``0 log 0 = 0``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .base import ContributorMetric


class ContributorInceptionScore(ContributorMetric):
    """Inception Score of any coalition's sample mixture (higher is better).

    Parameters
    ----------
    feature : bank array with per-sample class probabilities ``(N, K)`` (or logits, see below).
    num_classes : K; when None it is taken from the first update (give it for DDP, where every
        rank must hold the states before the first sync, and to load a state_dict before updating).
    from_logits : the data are logits; a softmax (float64) turns them into probabilities.
    num_contributors : number of contributors (see ``ContributorMetric``).

    >>> import numpy as np
    >>> metric = ContributorInceptionScore(feature="probs", num_classes=2, num_contributors=2)
    >>> metric.update(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1]))  # each sure of its class
    >>> metric.compute(), metric.compute_coalitions(np.array([[1, 0]], bool), np.ones(2))
    (tensor(2., dtype=torch.float64), tensor([1.], dtype=torch.float64))
    """

    higher_is_better = True

    def __init__(
        self,
        feature: str = "probs",
        num_classes: int | None = None,
        from_logits: bool = False,
        num_contributors: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(feature=feature, num_contributors=None, **kwargs)
        if num_classes is not None and num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}.")
        self.num_classes = num_classes
        self.from_logits = bool(from_logits)
        if num_contributors is not None:
            self.set_num_contributors(num_contributors)

    def _init_contributor_states(self, num_contributors: int) -> None:
        if self.num_classes is not None:
            self._add_class_states(self.num_classes)

    def _add_class_states(self, num_classes: int) -> None:
        c = self._require_setup()
        self.num_classes = int(num_classes)
        self.add_state(
            "sum_probs",
            torch.zeros(c, num_classes, dtype=torch.float64, device=self.count.device),
            dist_reduce_fx="sum",
            persistent=True,
        )
        self.add_state(
            "sum_neg_entropy",
            torch.zeros(c, dtype=torch.float64, device=self.count.device),
            dist_reduce_fx="sum",
            persistent=True,
        )

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any, **kwargs: Any) -> None:
        if self.num_classes is None and prefix + "sum_probs" in state_dict:
            if self.num_contributors is None:
                self.set_num_contributors(int(state_dict[prefix + "sum_probs"].shape[0]))
            self._add_class_states(int(state_dict[prefix + "sum_probs"].shape[1]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _probabilities(self, data: Tensor) -> Tensor:
        if data.ndim != 2 or data.shape[1] < 2:
            raise ValueError(
                f"ContributorInceptionScore expects class probabilities of shape (N, K >= 2), got {tuple(data.shape)}."
            )
        if self.num_classes is not None and data.shape[1] != self.num_classes:
            raise ValueError(
                f"ContributorInceptionScore was set up for {self.num_classes} classes, got {data.shape[1]}."
            )
        x = data.to(torch.float64)
        if not torch.isfinite(x).all():
            raise ValueError("ContributorInceptionScore got NaN or infinite values.")
        if self.from_logits:
            return torch.softmax(x, dim=1)
        if (x < 0).any() or not torch.allclose(x.sum(dim=1), torch.ones_like(x[:, 0]), atol=1e-4):
            raise ValueError(
                "ContributorInceptionScore expects probabilities (non-negative rows summing to 1); pass "
                "from_logits=True for logits."
            )
        return x / x.sum(dim=1, keepdim=True)

    def _accumulate(self, data: Tensor, member: Tensor) -> None:
        probs = self._probabilities(data)
        if self.num_classes is None:
            self._add_class_states(probs.shape[1])
        self.sum_probs += member.T @ probs
        self.sum_neg_entropy += member.T @ torch.special.xlogy(probs, probs).sum(dim=1)

    def _compute_mixture(self, alpha: Tensor, sum_w2: Tensor) -> Tensor:
        if self.num_classes is None:
            raise ValueError("ContributorInceptionScore has no samples yet: update it before computing.")
        pbar = alpha @ self.sum_probs
        mean_kl = alpha @ self.sum_neg_entropy - torch.special.xlogy(pbar, pbar).sum(dim=1)
        return torch.exp(mean_kl.clamp_min(0))
