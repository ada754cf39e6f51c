"""Rate of a behaviour (e.g. a spurious marker) over a coalition's samples."""

from __future__ import annotations

from typing import Any

from .mean import ContributorMean


class ContributorRate(ContributorMean):
    """Mixture-weighted mean of a per-sample 0/1 flag or score in ``(N,)``, e.g. a marker detector.

    ``higher_is_better`` defaults to False: the audited behaviour is unwanted.

    >>> import numpy as np
    >>> import torch
    >>> rate = ContributorRate(feature="marker", num_contributors=2)
    >>> rate.update(torch.tensor([1.0, 0.0, 0.0, 0.0]), torch.tensor([0, 0, 1, 1]))
    >>> rate.compute_coalitions(np.array([[1, 0], [0, 1], [1, 1]], bool), np.array([1.0, 3.0]))
    tensor([0.5000, 0.0000, 0.1250], dtype=torch.float64)
    """

    def __init__(
        self,
        feature: str = "marker",
        num_contributors: int | None = None,
        higher_is_better: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            feature=feature, num_contributors=num_contributors, higher_is_better=higher_is_better, **kwargs
        )
