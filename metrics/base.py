"""Shared machinery of the coalition-decomposable metrics.

Every metric keeps *per-contributor sufficient statistics*: sums over samples of some
per-sample statistic, each sample counted with its membership weight for each
contributor. Hard membership (one contributor per sample) is the one-hot special case;
soft membership (a sample generated under a condition that several contributors share,
with a responsibility per contributor summing to 1) uses the same states.

A coalition S with contributor weights ``weights`` (default: data sizes n_i) gives
contributor ``i`` the mixture share ``a_i = weights_i / sum_{j in S} weights_j`` (0 outside S),
spread evenly over its unit of membership mass: the per-unit weight is
``alpha_i = a_i / count_i`` where ``count_i = sum_x r_ix``. A sample ``x`` then carries weight
``w_x = sum_i alpha_i r_ix``, and every weighted sum over samples is ``alpha @ state``.
``sum_x w_x^2 = alpha^T Q alpha`` with ``Q_ij = sum_x r_ix r_jx`` (the membership Gram matrix,
diagonal ``count`` for hard membership) is what unbiased (reliability-weighted) estimates need.

Metrics whose value is not a function of per-contributor sums of fixed size (FID's covariance,
the Vendi kernel, a general pairwise distance) keep the samples themselves instead
(:meth:`ContributorMetric._add_sample_states`): memory ``O(N d)``, the bank's own size, whatever
the number of contributors, with each sample's membership stored sparse (one entry per
contributor it belongs to); :meth:`ContributorMetric._sample_weights` gives every sample's weight
``w_x`` in a batch of mixtures.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat


def _cat(states: Any) -> Tensor:
    """A list state (or an already concatenated tensor, after a DDP sync) as one tensor."""
    return dim_zero_cat(states) if isinstance(states, list) else states


class MissingSamplesError(ValueError):
    """A coalition holds a contributor (metric column) that has no samples; ``coalition`` and ``column`` say
    which (row of the masks, column index), so a caller that knows the columns' names can name it.

    >>> import numpy as np
    >>> from surrogateshap.metrics import ContributorMean
    >>> metric = ContributorMean(feature="score", num_contributors=2)
    >>> metric.update(torch.tensor([1.0]), torch.tensor([0]))
    >>> metric.compute_coalitions(np.array([[0, 1]], bool), np.ones(2))
    Traceback (most recent call last):
    ...
    surrogateshap.metrics.base.MissingSamplesError: contributor 1 is in coalition 0 but has no samples in the bank; ...
    """

    def __init__(self, coalition: int, column: int) -> None:
        super().__init__(
            f"contributor {column} is in coalition {coalition} but has no samples in the bank; generate samples "
            "for it or drop it from the players."
        )
        self.coalition = coalition
        self.column = column


def membership_matrix(contributors: Tensor | np.ndarray, num_contributors: int) -> Tensor:
    """Turn contributor indices ``(N,)`` or a membership matrix ``(N, C)`` into float64 ``(N, C)``.

    Integer indices must lie in ``[0, num_contributors)``; a membership matrix must be
    non-negative with rows summing to 1.

    >>> membership_matrix(torch.tensor([1, 0]), 3)
    tensor([[0., 1., 0.],
            [1., 0., 0.]], dtype=torch.float64)
    """
    contributors = torch.as_tensor(contributors)
    if contributors.ndim == 1:
        if contributors.dtype.is_floating_point or contributors.dtype == torch.bool:
            raise ValueError(
                "contributors must be integer indices of shape (N,) or a float membership matrix of shape "
                f"(N, {num_contributors}); got a 1-d tensor of dtype {contributors.dtype}."
            )
        idx = contributors.long()
        if idx.numel() and (idx.min() < 0 or idx.max() >= num_contributors):
            raise ValueError(
                f"contributor index out of range: got values in [{int(idx.min())}, {int(idx.max())}] but the "
                f"metric has {num_contributors} contributors; map ids to indices 0..{num_contributors - 1}."
            )
        out = torch.zeros(idx.shape[0], num_contributors, dtype=torch.float64, device=idx.device)
        out[torch.arange(idx.shape[0], device=idx.device), idx] = 1.0
        return out
    if contributors.ndim == 2:
        if contributors.shape[1] != num_contributors:
            raise ValueError(
                f"membership matrix has {contributors.shape[1]} columns but the metric has "
                f"{num_contributors} contributors."
            )
        member = contributors.to(torch.float64)
        if (member < 0).any() or not torch.allclose(
            member.sum(dim=1), torch.ones(member.shape[0], dtype=torch.float64, device=member.device)
        ):
            raise ValueError("membership rows must be non-negative and sum to 1 (one unit of mass per sample).")
        return member
    raise ValueError(f"contributors must have 1 or 2 dimensions, got shape {tuple(contributors.shape)}.")


class ContributorMetric(Metric):
    """Base class: per-contributor states, the full-set ``compute`` and ``compute_coalitions``.

    Subclasses define ``_init_contributor_states(num_contributors)`` (calling
    ``add_state`` with ``dist_reduce_fx="sum"``), ``_accumulate(data, member)`` (add a batch,
    ``member`` the float64 ``(N, C)`` membership) and ``_compute_mixture(alpha, sum_w2)``
    (the utility for each row of per-unit weights ``alpha`` of shape ``(k, C)``).

    Parameters
    ----------
    feature : name of the bank array this metric reads (used by ``ProxyGame``).
    num_contributors : number of contributors; when None it is set by the first caller
        that knows it (``ProxyGame`` does), before any update.

    >>> import numpy as np
    >>> from surrogateshap.metrics import ContributorMean
    >>> metric = ContributorMean(feature="score", num_contributors=2)
    >>> # sample 0 is contributor 0's, sample 1 is shared half and half (soft membership)
    >>> metric.update(torch.tensor([1.0, 3.0]), torch.tensor([[1.0, 0.0], [0.5, 0.5]]))
    >>> metric.mass()
    tensor([1.5000, 0.5000], dtype=torch.float64)
    >>> metric.compute_coalitions(np.array([[1, 0], [0, 1]], bool), np.ones(2))
    tensor([1.6667, 3.0000], dtype=torch.float64)
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better: bool | None = None

    def __init__(self, feature: str, num_contributors: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.feature = feature
        self.num_contributors: int | None = None
        if num_contributors is not None:
            self.set_num_contributors(num_contributors)

    def set_num_contributors(self, num_contributors: int) -> None:
        """Create the per-contributor states for ``num_contributors`` contributors (once)."""
        if self.num_contributors is not None:
            if self.num_contributors != num_contributors:
                raise ValueError(
                    f"{type(self).__name__} was set up for {self.num_contributors} contributors, "
                    f"not {num_contributors}; create a new metric for a different bank."
                )
            return
        if num_contributors < 1:
            raise ValueError(f"num_contributors must be at least 1, got {num_contributors}.")
        self.num_contributors = int(num_contributors)
        c = self.num_contributors
        self.add_state("count", torch.zeros(c, dtype=torch.float64), dist_reduce_fx="sum", persistent=True)
        self.add_state(
            "membership_gram", torch.zeros(c, c, dtype=torch.float64), dist_reduce_fx="sum", persistent=True
        )
        self._init_contributor_states(c)

    def mass(self) -> Tensor:
        """(C,) float64 membership mass fed into each column so far: its number of samples (hard
        membership) or its summed responsibilities (soft). Zero before any update."""
        self._require_setup()
        return self.count.detach().clone()

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any, **kwargs: Any) -> None:
        # a metric created without num_contributors learns it from the saved states
        if self.num_contributors is None and prefix + "count" in state_dict:
            self.set_num_contributors(int(state_dict[prefix + "count"].shape[0]))
        self._invalidate_cache()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _require_setup(self) -> int:
        if self.num_contributors is None:
            raise ValueError(
                f"{type(self).__name__} does not know how many contributors there are: pass "
                "num_contributors=... when creating it (ProxyGame does this for you)."
            )
        return self.num_contributors

    def update(self, data: Tensor, contributors: Tensor) -> None:  # type: ignore[override]
        """Add per-sample ``data`` (first dimension N) of samples owned by ``contributors``.

        ``contributors`` is an int tensor ``(N,)`` of contributor indices, or a float
        membership matrix ``(N, C)`` whose rows sum to 1.
        """
        c = self._require_setup()
        data = torch.as_tensor(data)
        member = membership_matrix(contributors, c).to(self.count.device)
        if data.shape[0] != member.shape[0]:
            raise ValueError(
                f"{type(self).__name__}.update got {data.shape[0]} samples but {member.shape[0]} contributor "
                "entries; give one contributor (or membership row) per sample."
            )
        # subclasses validate before they add anything: accumulate first, so that a rejected batch
        # leaves every state (counts included) untouched
        self._accumulate(data.to(self.count.device), member)
        self._invalidate_cache()
        self.count += member.sum(dim=0)
        # only the columns present in the batch: a batch touches few contributors, and a full
        # (C, N) @ (N, C) product would cost N C^2 however sparse the membership is
        cols = torch.nonzero(member.sum(dim=0) > 0)[:, 0]
        sub = member[:, cols]
        self.membership_gram[cols[:, None], cols[None, :]] += sub.T @ sub

    def compute(self) -> Tensor:
        """The utility of the whole sample set, every sample weighted equally."""
        c = self._require_setup()
        total = self.count.sum()
        if total <= 0:
            raise ValueError(f"{type(self).__name__}.compute called before any update.")
        alpha = torch.full((1, c), 1.0, dtype=torch.float64, device=self.count.device) / total
        return self._compute_mixture(alpha, self._sum_w2(alpha))[0]

    def coalition_alpha(self, masks: np.ndarray | Tensor, weights: np.ndarray | Tensor) -> Tensor:
        """Per-unit weights ``alpha`` (k, C) for coalitions ``masks`` (k, C) with contributor ``weights``."""
        c = self._require_setup()
        device = self.count.device
        masks_t = (masks if isinstance(masks, Tensor) else torch.as_tensor(np.asarray(masks))).to(device)
        if masks_t.ndim != 2 or masks_t.shape[1] != c or masks_t.dtype != torch.bool:
            raise ValueError(f"coalition masks must be a bool array of shape (k, {c}), got {tuple(masks_t.shape)}.")
        w = (weights if isinstance(weights, Tensor) else torch.as_tensor(np.asarray(weights, dtype=np.float64)))
        w = w.to(device=device, dtype=torch.float64)
        if w.shape != (c,) or (w <= 0).any() or not torch.isfinite(w).all():
            raise ValueError(f"contributor weights must be {c} positive finite numbers.")
        share = masks_t.to(torch.float64) * w
        totals = share.sum(dim=1, keepdim=True)
        if (totals == 0).any():
            row = int(torch.nonzero(totals[:, 0] == 0)[0])
            raise ValueError(
                f"coalition {row} is empty: a metric has no samples to evaluate; the empty coalition's value "
                "is v_empty (given by the user or by a base-model bank)."
            )
        lacking = masks_t & (self.count <= 0)
        if lacking.any():
            raise MissingSamplesError(*(int(v) for v in torch.nonzero(lacking)[0]))
        safe_count = torch.where(self.count > 0, self.count, torch.ones_like(self.count))
        return share / totals / safe_count

    def compute_coalitions(self, masks: np.ndarray | Tensor, weights: np.ndarray | Tensor) -> Tensor:
        """The utility of each coalition (float64 tensor of shape (k,)), all at once.

        It reads this process's states. When several DDP ranks updated the metric, call the
        collective ``metric.sync()`` on every rank first (``compute()`` does that itself); it is
        not done here so that one rank alone may score coalitions without a hanging collective.
        """
        return self.compute_mixtures(self.coalition_alpha(masks, weights))

    def compute_mixtures(self, alpha: np.ndarray | Tensor) -> Tensor:
        """The utility of each weighted mixture: row ``k`` of ``alpha`` (k, C) is the per-unit weight of
        each column's membership mass, so sample ``x`` weighs ``sum_i alpha_ki r_ix`` (rows sum to 1
        over the samples). ``compute_coalitions`` is this with ``coalition_alpha``; soft membership
        (``surrogateshap.membership``) builds its own ``alpha``.
        """
        c = self._require_setup()
        alpha_t = torch.as_tensor(alpha, dtype=torch.float64).to(self.count.device)
        if alpha_t.ndim != 2 or alpha_t.shape[1] != c:
            raise ValueError(f"alpha must have shape (k, {c}), got {tuple(alpha_t.shape)}.")
        if (alpha_t < 0).any() or not torch.isfinite(alpha_t).all():
            raise ValueError("alpha must be non-negative finite per-unit weights.")
        return self._compute_mixture(alpha_t, self._sum_w2(alpha_t))

    def _sum_w2(self, alpha: Tensor) -> Tensor:
        """``sum_x w_x^2`` for each row of ``alpha``."""
        return torch.einsum("ki,ij,kj->k", alpha, self.membership_gram, alpha)

    # samples kept as they are ------------------------------------------------------
    def _add_sample_states(self) -> None:
        """List states holding every sample (``samples``, first dimension N) and its sparse membership:
        ``entry_count`` (N,) entries per sample, then ``entry_column`` / ``entry_weight`` (one row per entry, in
        sample order). Concatenated across DDP ranks ("cat"), the three stay aligned."""
        self.add_state("samples", [], dist_reduce_fx="cat", persistent=True)
        self.add_state("entry_count", [], dist_reduce_fx="cat", persistent=True)
        self.add_state("entry_column", [], dist_reduce_fx="cat", persistent=True)
        self.add_state("entry_weight", [], dist_reduce_fx="cat", persistent=True)

    def _store_samples(self, data: Tensor, member: Tensor) -> None:
        """Append a batch of samples (as given) with their membership rows (only the nonzero entries)."""
        rows, cols = torch.nonzero(member > 0, as_tuple=True)
        self.samples.append(data.detach())
        self.entry_count.append(torch.bincount(rows, minlength=member.shape[0]).to(torch.int64))
        self.entry_column.append(cols.to(torch.int64))
        self.entry_weight.append(member[rows, cols].to(torch.float64))

    def _stored_samples(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(samples (N, ...), entry_row, entry_column, entry_weight)``, the membership as sparse triplets (cached)."""

        def gather() -> tuple[Tensor, Tensor, Tensor, Tensor]:
            if not self.samples:
                raise ValueError(f"{type(self).__name__} has no samples: update it first.")
            counts = _cat(self.entry_count)
            rows = torch.repeat_interleave(torch.arange(counts.shape[0], device=counts.device), counts)
            return _cat(self.samples), rows, _cat(self.entry_column), _cat(self.entry_weight)

        return self._cached("stored_samples", gather)

    def _sample_weights(self, alpha: Tensor) -> Tensor:
        """Every stored sample's weight ``w_x = sum_i alpha_ki r_ix`` in each mixture: ``(N, k)``."""
        samples, rows, cols, vals = self._stored_samples()
        weights = torch.zeros(samples.shape[0], alpha.shape[0], dtype=torch.float64, device=alpha.device)
        return weights.index_add_(0, rows, vals[:, None] * alpha[:, cols].T)

    def _membership_rows(self, start: int, stop: int) -> Tensor:
        """The dense membership ``(stop - start, C)`` of stored samples ``start:stop``."""
        _, rows, cols, vals = self._stored_samples()
        keep = (rows >= start) & (rows < stop)
        block = torch.zeros(stop - start, self._require_setup(), dtype=torch.float64, device=vals.device)
        return block.index_put_((rows[keep] - start, cols[keep]), vals[keep], accumulate=True)

    # derived values, cached until the states change ---------------------------------
    def _cached(self, key: str, make: Any) -> Any:
        cache = self.__dict__.setdefault("_derived", {})
        if key not in cache:
            cache[key] = make()
        return cache[key]

    def _invalidate_cache(self) -> None:
        self.__dict__.pop("_derived", None)

    def reset(self) -> None:
        """Reset the states (and whatever was derived from them)."""
        self._invalidate_cache()
        super().reset()

    def merge_state(self, incoming_state: Any) -> None:
        """Merge another metric's (or a state dict's) states."""
        self._invalidate_cache()
        super().merge_state(incoming_state)

    def _reduce_states(self, incoming_state: dict[str, Any]) -> None:
        # also reached from ``forward``, which restores the accumulated states this way
        self._invalidate_cache()
        super()._reduce_states(incoming_state)

    def sync(self, *args: Any, **kwargs: Any) -> None:
        """DDP sync (gathers every rank's states); what was derived from the local ones is dropped."""
        was_synced = self._is_synced
        super().sync(*args, **kwargs)
        if self._is_synced != was_synced:  # outside DDP sync is a no-op: keep the cache
            self._invalidate_cache()

    def unsync(self, *args: Any, **kwargs: Any) -> None:
        """Restore the local states after a sync."""
        was_synced = self._is_synced
        super().unsync(*args, **kwargs)
        if self._is_synced != was_synced:
            self._invalidate_cache()

    def _size_lazy_state(self, name: str, incoming_state: Any) -> Any:
        """Before a merge, size a lazily sized state ``name`` (dimension 1 still 0) on either side to the
        other's shape; returns the incoming state to merge."""
        other = (
            incoming_state if isinstance(incoming_state, dict) else getattr(incoming_state, "metric_state", None)
        )
        if other is None or name not in other:
            return incoming_state
        local, incoming = getattr(self, name), other[name]
        if local.shape[1] == 0 and incoming.shape[1] > 0:
            setattr(self, name, torch.zeros_like(incoming, device=local.device))
        elif incoming.shape[1] == 0 and local.shape[1] > 0:
            return {**other, name: torch.zeros_like(local)}
        return incoming_state

    # subclass hooks -----------------------------------------------------------------
    def _init_contributor_states(self, num_contributors: int) -> None:
        raise NotImplementedError

    def _accumulate(self, data: Tensor, member: Tensor) -> None:
        raise NotImplementedError

    def _compute_mixture(self, alpha: Tensor, sum_w2: Tensor) -> Tensor:
        raise NotImplementedError
