"""Mean pairwise distance of a coalition's weighted sample mixture (a diversity utility).

The value is the expected distance between two *distinct* samples drawn from the mixture:
``sum_{x != y} w_x w_y d(x, y) / sum_{x != y} w_x w_y``, where the denominator is
``1 - sum_x w_x^2`` because the weights sum to 1.

- Cosine distance on embeddings is decomposable: with unit embeddings
  ``sum_{x != y} w_x w_y (1 - e_x.e_y) = 1 - |sum_x w_x e_x|^2``, so per-contributor sums of
  normalised embeddings ``(C, d)`` are sufficient.
- Any other distance (Euclidean, or an LPIPS callable on image batches) needs every pair:
  the samples are kept in list states and the per-contributor-pair block sums
  ``B_ij = sum_{x != y} r_ix r_jy d(x, y)`` are built lazily, once, at compute time; then
  every coalition is ``alpha^T B alpha / (1 - sum_w2)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .base import ContributorMetric

DistanceFn = Callable[[Tensor, Tensor], Tensor]


def normalized_embeddings(data: Tensor, name: str = "embeddings") -> Tensor:
    """Return ``(N, d)`` embeddings as float64 rows of unit L2 norm (error on zero rows).

    >>> normalized_embeddings(torch.tensor([[3.0, 4.0]]))
    tensor([[0.6000, 0.8000]], dtype=torch.float64)
    """
    data = torch.as_tensor(data)
    if data.ndim != 2:
        raise ValueError(f"{name} must have shape (N, d), got {tuple(data.shape)}.")
    emb = data.to(torch.float64)
    norms = torch.linalg.vector_norm(emb, dim=1, keepdim=True)
    if (norms == 0).any() or not torch.isfinite(norms).all():
        raise ValueError(f"{name} contain a zero or non-finite row; cosine similarity is undefined for it.")
    return emb / norms


def euclidean_distance(a: Tensor, b: Tensor) -> Tensor:
    """Euclidean distance matrix ``(len(a), len(b))`` between flattened samples.

    >>> euclidean_distance(torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0]]))
    tensor([[5.]], dtype=torch.float64)
    """
    a64 = a.reshape(a.shape[0], -1).to(torch.float64)
    b64 = b.reshape(b.shape[0], -1).to(torch.float64)
    return torch.cdist(a64, b64, compute_mode="donot_use_mm_for_euclid_dist")


def cosine_distance(a: Tensor, b: Tensor) -> Tensor:
    """Cosine distance matrix ``1 - cos(a_x, b_y)`` of shape ``(len(a), len(b))``.

    >>> cosine_distance(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]]))
    tensor([[1.]], dtype=torch.float64)
    """
    return (
        1.0
        - normalized_embeddings(a.reshape(a.shape[0], -1))
        @ normalized_embeddings(b.reshape(b.shape[0], -1)).T
    )


def _pair_denominator(sum_w2: Tensor) -> Tensor:
    """``1 - sum_w2``; refuse coalitions whose mixture is a single sample (no pair exists)."""
    denom = 1.0 - sum_w2
    single = denom <= 1e-12
    if single.any():
        row = int(torch.nonzero(single)[0])
        raise ValueError(
            f"coalition {row} holds a single sample: a mean pairwise distance needs at least two samples "
            "(generate more samples for its contributors)."
        )
    return denom


class ContributorMeanPairwiseDistance(ContributorMetric):
    """Expected distance between two distinct samples of a coalition's weighted mixture.

    Parameters
    ----------
    feature : bank array the metric reads ("embedding"; image batches for LPIPS).
    distance : ``"cosine"`` (decomposable, constant memory: data must be ``(N, d)``),
        ``"euclidean"``, or a callable ``distance(a, b) -> (len(a), len(b))`` matrix, for
        instance ``PairedLPIPSScorer.pairwise``. Non-cosine distances store every sample.
    block_size : samples per block when building the pair sums for a callable distance.
    symmetric : the callable distance is symmetric, so only blocks on and above the
        diagonal are evaluated.
    embedding_dim : embedding size for ``"cosine"``; when None the state is sized by the
        first update (give it under DDP, where a rank may see no data).
    num_contributors, kwargs : as for :class:`ContributorMetric`.

    >>> import numpy as np
    >>> metric = ContributorMeanPairwiseDistance(feature="embedding", num_contributors=2)
    >>> metric.update(torch.eye(2)[[0, 0, 1, 1]], torch.tensor([0, 0, 1, 1]))  # two identical pairs
    >>> metric.compute_coalitions(np.array([[1, 0], [1, 1]], bool), np.ones(2))
    tensor([0.0000, 0.6667], dtype=torch.float64)
    """

    higher_is_better = True

    def __init__(
        self,
        feature: str = "embedding",
        distance: str | DistanceFn = "cosine",
        num_contributors: int | None = None,
        block_size: int = 256,
        symmetric: bool = True,
        embedding_dim: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(feature=feature, **kwargs)
        if isinstance(distance, str):
            if distance not in ("cosine", "euclidean"):
                raise ValueError(f"distance must be 'cosine', 'euclidean' or a callable, got {distance!r}.")
            self.decomposable = distance == "cosine"
            self.distance_fn: DistanceFn | None = None if self.decomposable else euclidean_distance
        elif callable(distance):
            self.decomposable = False
            self.distance_fn = distance
        else:
            raise TypeError(f"distance must be a string or a callable, got {type(distance).__name__}.")
        if block_size < 1:
            raise ValueError(f"block_size must be positive, got {block_size}.")
        self.block_size = int(block_size)
        self.symmetric = bool(symmetric)
        self.embedding_dim = embedding_dim
        if num_contributors is not None:
            self.set_num_contributors(num_contributors)

    # states -----------------------------------------------------------------------
    def _init_contributor_states(self, num_contributors: int) -> None:
        if self.decomposable:
            # (C, 0) until the first update fixes the embedding dimension, unless it is given
            self.add_state(
                "embedding_sum",
                torch.zeros(num_contributors, self.embedding_dim or 0, dtype=torch.float64),
                dist_reduce_fx="sum",
                persistent=True,
            )
        else:
            self._add_sample_states()

    def _accumulate(self, data: Tensor, member: Tensor) -> None:
        if self.decomposable:
            emb = normalized_embeddings(data)
            if self.embedding_sum.shape[1] == 0:
                self.embedding_sum = torch.zeros(
                    member.shape[1], emb.shape[1], dtype=torch.float64, device=emb.device
                )
            elif self.embedding_sum.shape[1] != emb.shape[1]:
                raise ValueError(
                    f"embedding dimension changed from {self.embedding_sum.shape[1]} to {emb.shape[1]}."
                )
            self.embedding_sum += member.T @ emb
        else:
            self._store_samples(data, member)

    # the pair sums of a general distance ------------------------------------------
    def pair_sums(self) -> Tensor:
        """Per-contributor-pair sums ``B`` (C, C) of distances over distinct samples (cached until the states
        change)."""
        if self.decomposable:
            raise RuntimeError("pair sums are only kept for non-decomposable distances.")
        return self._cached("pair_sums", self._build_pair_sums)

    def _build_pair_sums(self) -> Tensor:
        samples = self._stored_samples()[0]
        n = samples.shape[0]
        c = self._require_setup()
        assert self.distance_fn is not None
        pair = torch.zeros(c, c, dtype=torch.float64, device=self.count.device)
        bs = self.block_size
        for i0 in range(0, n, bs):
            i1 = min(i0 + bs, n)
            left = self._membership_rows(i0, i1)
            j_start = i0 if self.symmetric else 0
            for j0 in range(j_start, n, bs):
                j1 = min(j0 + bs, n)
                dist = torch.as_tensor(self.distance_fn(samples[i0:i1], samples[j0:j1]))
                dist = dist.to(device=pair.device, dtype=torch.float64)
                if dist.shape != (i1 - i0, j1 - j0):
                    raise ValueError(
                        f"distance(a, b) must return a ({i1 - i0}, {j1 - j0}) matrix, "
                        f"got {tuple(dist.shape)}."
                    )
                if i0 == j0:  # distinct samples only: drop self-distances
                    dist = dist.clone()
                    dist.fill_diagonal_(0.0)
                block = left.T @ dist @ self._membership_rows(j0, j1)
                pair += block
                if self.symmetric and j0 != i0:
                    pair += block.T
        return pair

    def merge_state(self, incoming_state: Any) -> None:
        """Merge another metric's (or a state dict's) states (sizing a still-empty embedding sum first)."""
        if self.decomposable:
            incoming_state = self._size_lazy_state("embedding_sum", incoming_state)
        super().merge_state(incoming_state)

    # values -----------------------------------------------------------------------
    def _compute_mixture(self, alpha: Tensor, sum_w2: Tensor) -> Tensor:
        denom = _pair_denominator(sum_w2)
        if self.decomposable:
            mean_emb = alpha @ self.embedding_sum  # (k, d) = sum_x w_x e_x
            numer = 1.0 - (mean_emb * mean_emb).sum(dim=1)
        else:
            pair = self.pair_sums()
            numer = torch.einsum("ki,ij,kj->k", alpha, pair, alpha)
        return numer / denom
