"""Correlation between two per-sample quantities over a coalition's samples: the spurious-correlation audit."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .base import ContributorMetric

_MOMENTS = ("x", "y", "xx", "yy", "xy")


class ContributorCorrelation(ContributorMetric):
    r"""Pearson correlation of two per-sample quantities ``(N, 2)`` (x, y side by side) in a coalition's mixture.

    With the mixture's sample weights :math:`w_x` (summing to 1) and weighted means
    :math:`E[\cdot] = \sum_x w_x (\cdot)`:

    .. math:: \rho = \frac{E[xy] - E[x] E[y]}{\sqrt{(E[x^2] - E[x]^2)(E[y^2] - E[y]^2)}}

    State: per contributor the membership-weighted sums of x, y, x^2, y^2 and xy (float64), so a coalition's
    moments are ``alpha @ state``. Where either quantity is constant in the mixture (no variance) the
    correlation is 0: no association can be seen. The clinical audit's utility is of this kind (a marker
    vs the diagnosis); ``higher_is_better`` defaults to False (the correlation is unwanted).

    >>> import numpy as np
    >>> metric = ContributorCorrelation(feature="marker_and_subject", num_contributors=2)
    >>> pairs = torch.tensor([[1.0, 1.0], [0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    >>> metric.update(pairs, torch.tensor([0, 0, 1, 1]))
    >>> metric.compute_coalitions(np.array([[1, 0], [0, 1], [1, 1]], bool), np.array([1.0, 1.0]))
    tensor([ 1., -1.,  0.], dtype=torch.float64)
    """

    higher_is_better = False

    def __init__(self, feature: str, num_contributors: int | None = None, higher_is_better: bool | None = None,
                 **kwargs: Any) -> None:
        super().__init__(feature=feature, num_contributors=num_contributors, **kwargs)
        if higher_is_better is not None:  # see ContributorMean: a per-instance direction past torchmetrics' guard
            object.__setattr__(self, "higher_is_better", bool(higher_is_better))

    def _init_contributor_states(self, num_contributors: int) -> None:
        for name in _MOMENTS:
            self.add_state(f"sum_{name}", torch.zeros(num_contributors, dtype=torch.float64), dist_reduce_fx="sum",
                           persistent=True)

    def _accumulate(self, data: Tensor, member: Tensor) -> None:
        if data.ndim != 2 or data.shape[1] != 2:
            raise ValueError(f"{type(self).__name__} expects two quantities per sample, shape (N, 2) (x and y side "
                             f"by side); got {tuple(data.shape)}.")
        pairs = data.to(torch.float64)
        if not torch.isfinite(pairs).all():
            raise ValueError(f"{type(self).__name__} got NaN or infinite values.")
        x, y = pairs[:, 0], pairs[:, 1]
        for name, values in zip(_MOMENTS, (x, y, x * x, y * y, x * y)):
            getattr(self, f"sum_{name}").add_(member.T @ values)

    def _compute_mixture(self, alpha: Tensor, sum_w2: Tensor) -> Tensor:
        ex, ey, exx, eyy, exy = (alpha @ getattr(self, f"sum_{name}") for name in _MOMENTS)
        var_x, var_y = (exx - ex * ex).clamp_min(0.0), (eyy - ey * ey).clamp_min(0.0)
        scale = torch.sqrt(var_x * var_y)
        tiny = 1e-12 * torch.clamp_min(torch.sqrt(exx * eyy), 1e-300)  # rounding of a constant quantity
        return torch.where(scale > tiny, (exy - ex * ey) / torch.where(scale > tiny, scale, 1.0), 0.0)
