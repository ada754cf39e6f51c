"""Coalition-decomposable Frechet Inception Distance.

A coalition's mixture puts weight ``w_x`` on sample ``x`` (``sum_x w_x = 1``); its mean is
``mu = alpha @ S1`` from the per-contributor feature sums ``S1`` and its covariance the
reliability-weighted unbiased ``S = Y^T Y / (1 - sum_x w_x^2)`` with rows
``Y_x = sqrt(w_x) (x - mu)`` over the coalition's ``K`` samples (``np.cov(X, aweights=w, ddof=1)``;
``ddof=1`` for equal weights). With ``R`` the PSD square root of the reference covariance,
``FID = |mu - mu_r|^2 + tr S + tr S_r - 2 tr sqrt(R S R)`` and ``tr sqrt(R S R)`` is the sum of the
square roots of the eigenvalues of ``(Y R)^T (Y R) / c`` (``d x d``) or, the same nonzero ones, of
``(Y R)(Y R)^T / c`` (``K x K``): whichever is smaller, chosen per coalition. The metric keeps the
samples (``O(N d)``, with ``X R`` cached once), never a ``d x d`` matrix per contributor.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg
import torch
from torch import Tensor

from .base import ContributorMetric

# arrays first: LightningCLI (jsonargparse) then builds a class_path given as the reference instead of
# taking it for a path string
ReferenceLike = np.ndarray | Tensor | str | os.PathLike | tuple | Mapping


def _reference_file_error(path: Path) -> FileNotFoundError:
    return FileNotFoundError(
        f"FID reference statistics file not found: '{path}'. Make it once from reference features with "
        "`surrogateshap.metrics.fid.save_reference_statistics(path, features)` (or "
        "`np.savez(path, mu=mu, sigma=sigma)`; clean-fid's stats files, e.g. from `cleanfid.fid."
        "make_custom_stats` or its published `<dataset>_clean_<split>_<res>.npz`, work as they are), then "
        "copy it to that path or point the metric's `reference` option at it. Nothing is downloaded here."
    )


def _to_numpy(array: Any) -> np.ndarray:
    if isinstance(array, Tensor):
        array = array.detach().cpu().numpy()
    return np.asarray(array, dtype=np.float64)


def statistics_from_features(features: np.ndarray | Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (``np.cov``, ddof=1) of features ``(N, d)``, float64.

    >>> statistics_from_features(np.array([[0.0, 0.0], [2.0, 2.0]]))
    (array([1., 1.]), array([[2., 2.],
           [2., 2.]]))
    """
    feats = _to_numpy(features)
    if feats.ndim != 2 or feats.shape[0] < 2:
        raise ValueError(f"reference features must have shape (N >= 2, d), got {feats.shape}.")
    if not np.isfinite(feats).all():
        raise ValueError("reference features contain NaN or infinite values.")
    return feats.mean(axis=0), np.atleast_2d(np.cov(feats, rowvar=False))


def load_reference_statistics(reference: ReferenceLike) -> tuple[np.ndarray, np.ndarray]:
    """Turn any accepted ``reference`` into float64 ``(mu (d,), sigma (d, d))``.

    Accepted: a ``(mu, sigma)`` tuple; a mapping with ``"mu"`` and ``"sigma"``; a features
    array ``(N, d)`` (mean and unbiased covariance are computed); or the path of an ``.npz``
    file with ``mu`` and ``sigma`` (our files and clean-fid's stats files alike) or with
    ``feats`` (clean-fid's KID reference files).

    >>> mu, sigma = load_reference_statistics((np.zeros(2), np.eye(2)))
    >>> mu.shape, sigma.shape
    ((2,), (2, 2))
    """
    if isinstance(reference, (str, os.PathLike)):
        path = Path(reference).expanduser()
        if not path.is_file():
            raise _reference_file_error(path)
        try:
            stats = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile):
            raise ValueError(
                f"FID reference file '{path}' is not a NumPy .npz archive of arrays; write one with "
                "surrogateshap.metrics.fid.save_reference_statistics(path, features)."
            ) from None
        if not hasattr(stats, "files"):
            raise ValueError(f"FID reference file '{path}' holds one array, not an .npz archive with 'mu' and "
                             "'sigma'; write one with save_reference_statistics(path, features).")
        with stats:
            keys = set(stats.files)
            try:
                if {"mu", "sigma"} <= keys:
                    return _checked_statistics(stats["mu"], stats["sigma"])
                if "feats" in keys:
                    return statistics_from_features(stats["feats"])
            except ValueError as err:
                raise ValueError(f"FID reference file '{path}': {err}") from None
            raise ValueError(
                f"FID reference file '{path}' has arrays {sorted(keys)}; it needs 'mu' and 'sigma' (or 'feats')."
            )
    elif isinstance(reference, Mapping):
        if not {"mu", "sigma"} <= set(reference):
            raise ValueError(f"a reference mapping needs keys 'mu' and 'sigma', got {sorted(reference)}.")
        mu, sigma = reference["mu"], reference["sigma"]
    elif isinstance(reference, tuple):
        if len(reference) != 2:
            raise ValueError(f"a reference tuple must be (mu, sigma), got {len(reference)} items.")
        mu, sigma = reference
    elif isinstance(reference, (np.ndarray, Tensor)):
        return statistics_from_features(reference)
    else:
        raise TypeError(
            "reference must be a (mu, sigma) tuple, a {'mu', 'sigma'} mapping, a features array (N, d) or the "
            f"path of an .npz statistics file; got {type(reference).__name__}."
        )
    return _checked_statistics(mu, sigma)


def _checked_statistics(mu: Any, sigma: Any) -> tuple[np.ndarray, np.ndarray]:
    mu, sigma = np.atleast_1d(_to_numpy(mu)), np.atleast_2d(_to_numpy(sigma))
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"reference mu must be (d,) and sigma (d, d); got {mu.shape} and {sigma.shape}.")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ValueError("reference statistics contain NaN or infinite values.")
    return mu, sigma


def save_reference_statistics(path: str | os.PathLike, features: np.ndarray | Tensor) -> Path:
    """Write the mean and unbiased covariance of ``features`` as an ``.npz`` with ``mu`` and ``sigma``.

    The format is clean-fid's (``np.savez_compressed(path, mu=..., sigma=...)``).

    >>> import tempfile
    >>> features = np.random.default_rng(0).normal(size=(10, 3))
    >>> path = save_reference_statistics(Path(tempfile.mkdtemp()) / "ref.npz", features)
    >>> load_reference_statistics(path)[1].shape
    (3, 3)
    """
    mu, sigma = statistics_from_features(features)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:  # a file handle keeps numpy from appending ".npz"
        np.savez_compressed(fh, mu=mu, sigma=sigma)
    return path


def psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    """Symmetric PSD square root of a symmetric matrix (negative eigenvalues clamped to 0).

    >>> psd_sqrt(np.diag([4.0, 9.0]))
    array([[2., 0.],
           [0., 3.]])
    """
    sym = (np.asarray(sigma, dtype=np.float64) + np.asarray(sigma, dtype=np.float64).T) / 2
    evals, evecs = scipy.linalg.eigh(sym)
    return (evecs * np.sqrt(np.clip(evals, 0.0, None))) @ evecs.T


def frechet_distance_batch(
    mu: Tensor, sigma: Tensor, mu_ref: Tensor, sigma_ref_sqrt: Tensor, trace_ref: Tensor | float
) -> Tensor:
    """Frechet distances of ``k`` Gaussians ``(mu (k, d), sigma (k, d, d))`` to one reference.

    ``sigma_ref_sqrt`` is the symmetric PSD square root ``R`` of the reference covariance and
    ``trace_ref`` its trace; ``tr sqrt(S S_r) = sum sqrt(eig(R S R))`` (eigenvalues clamped at 0).

    >>> frechet_distance_batch(torch.zeros(1, 2), torch.eye(2)[None], torch.ones(2), torch.eye(2), 2.0)  # |mu|^2 only
    tensor([2.], dtype=torch.float64)
    """
    mu = mu.to(torch.float64)
    sigma = sigma.to(torch.float64)
    root = sigma_ref_sqrt.to(device=sigma.device, dtype=torch.float64)
    diff = mu - mu_ref.to(device=mu.device, dtype=torch.float64)
    inner = root @ sigma @ root
    inner = (inner + inner.transpose(-1, -2)) / 2
    tr_covmean = torch.linalg.eigvalsh(inner).clamp_min(0).sqrt().sum(dim=-1)
    trace = torch.diagonal(sigma, dim1=-2, dim2=-1).sum(dim=-1)
    return (diff * diff).sum(dim=-1) + trace + trace_ref - 2 * tr_covmean


class ContributorFID(ContributorMetric):
    """FID of any coalition's sample mixture against fixed reference statistics (lower is better).

    Parameters
    ----------
    feature : bank array with per-sample features ``(N, d)`` (e.g. 2048-d Inception pool features).
    reference : ``(mu, sigma)``, a ``{"mu", "sigma"}`` mapping, reference features ``(N, d)``, or the
        path of an ``.npz`` with ``mu`` and ``sigma`` (clean-fid's stats files work as they are).
    num_contributors : number of contributors (see ``ContributorMetric``).

    Memory: the samples (``16 N d`` bytes with their projection ``X R``) and ``8 C d`` bytes of
    feature sums, whatever the number of contributors; a coalition of ``K`` samples costs
    ``min(K, d)^2 max(K, d)`` for its Gram matrix and a ``min(K, d)``-sized eigenvalue problem.

    >>> rng = np.random.default_rng(0)
    >>> fid = ContributorFID(feature="f", reference=rng.normal(size=(500, 2)), num_contributors=2)
    >>> features = np.concatenate([rng.normal(size=(200, 2)), rng.normal(size=(200, 2)) + 3])  # b is shifted
    >>> fid.update(torch.from_numpy(features), torch.tensor([0] * 200 + [1] * 200))
    >>> fid.compute_coalitions(np.array([[1, 0], [0, 1]], bool), np.ones(2))
    tensor([ 0.0334, 18.2015], dtype=torch.float64)
    """

    higher_is_better = False

    def __init__(
        self,
        feature: str = "inception",
        reference: ReferenceLike | None = None,
        num_contributors: int | None = None,
        **kwargs: Any,
    ) -> None:
        if reference is None:
            raise ValueError(
                "ContributorFID needs reference statistics: pass reference=<path to an .npz with mu and sigma>, "
                "(mu, sigma), or reference features (N, d)."
            )
        mu_ref, sigma_ref = load_reference_statistics(reference)
        super().__init__(feature=feature, num_contributors=None, **kwargs)
        self.dim = int(mu_ref.shape[0])
        # the reference is configuration, not accumulated state: buffers follow .to(device) but are
        # kept out of the state_dict
        self.register_buffer("mu_ref", torch.from_numpy(mu_ref), persistent=False)
        self.register_buffer("sigma_ref_sqrt", torch.from_numpy(psd_sqrt(sigma_ref)), persistent=False)
        self.register_buffer(
            "trace_ref", torch.tensor(float(np.trace(sigma_ref)), dtype=torch.float64), persistent=False
        )
        if num_contributors is not None:
            self.set_num_contributors(num_contributors)

    def _init_contributor_states(self, num_contributors: int) -> None:
        d = self.dim
        self.add_state(
            "sum_features", torch.zeros(num_contributors, d, dtype=torch.float64), dist_reduce_fx="sum", persistent=True
        )
        self.add_state(
            "sum_sqnorm", torch.zeros(num_contributors, dtype=torch.float64), dist_reduce_fx="sum", persistent=True
        )
        self._add_sample_states()

    def _accumulate(self, data: Tensor, member: Tensor) -> None:
        if data.ndim != 2 or data.shape[1] != self.dim:
            raise ValueError(
                f"ContributorFID expects features of shape (N, {self.dim}) matching the reference, got "
                f"{tuple(data.shape)}."
            )
        x = data.to(torch.float64)
        if not torch.isfinite(x).all():
            raise ValueError("ContributorFID got NaN or infinite features.")
        self.sum_features += member.T @ x
        self.sum_sqnorm += member.T @ (x * x).sum(dim=1)
        self._store_samples(x, member)

    def _projected(self) -> Tensor:
        """The stored features times the reference root, ``X R`` (N, d), computed once."""
        return self._cached("projected", lambda: self._stored_samples()[0] @ self.sigma_ref_sqrt)

    def _compute_mixture(self, alpha: Tensor, sum_w2: Tensor) -> Tensor:
        lonely = sum_w2 >= 1 - 1e-12
        if lonely.any():
            row = int(torch.nonzero(lonely)[0])
            raise ValueError(
                f"coalition {row} puts all its weight on a single sample: a covariance needs at least two "
                "samples; generate more samples per contributor."
            )
        projected = self._projected()
        mu = alpha @ self.sum_features  # (k, d)
        scale = 1.0 - sum_w2  # the unbiased covariance's denominator
        trace = (alpha @ self.sum_sqnorm - (mu * mu).sum(dim=1)) / scale
        diff = mu - self.mu_ref.to(mu.dtype)
        out = torch.empty(alpha.shape[0], dtype=torch.float64, device=alpha.device)
        weights = self._sample_weights(alpha)
        for j in range(alpha.shape[0]):
            rows = torch.nonzero(weights[:, j] > 0)[:, 0]
            y = projected[rows]  # a copy (advanced indexing), then centred and weighted in place
            y -= mu[j] @ self.sigma_ref_sqrt
            y *= weights[rows, j].sqrt()[:, None]
            gram = y @ y.T if rows.numel() < self.dim else y.T @ y  # the smaller one: same nonzero eigenvalues
            gram = (gram + gram.T) / (2 * scale[j])
            tr_covmean = torch.linalg.eigvalsh(gram).clamp_min(0).sqrt().sum()
            out[j] = (diff[j] * diff[j]).sum() + trace[j] + self.trace_ref - 2 * tr_covmean
        return out
