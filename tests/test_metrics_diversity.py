"""Diversity metrics (Vendi, mean pairwise distance, cluster entropy) against pooled-sample references.

Each coalition value must equal the same quantity computed directly, with an independent
numpy/scipy formula, on the explicitly pooled and weighted samples of the coalition.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist
from scipy.stats import entropy
from sklearn.cluster import AgglomerativeClustering
from surrogateshap.metrics.cluster_entropy import ContributorClusterEntropy, fit_ward_centers
from surrogateshap.metrics.pairwise import ContributorMeanPairwiseDistance, cosine_distance
from surrogateshap.metrics.vendi import ContributorVendiScore

RTOL = 1e-6
C = 5


# ---------------------------------------------------------------------------------- data
def make_data(n: int = 40, d: int = 6, soft: bool = False, seed: int = 0):
    """Embeddings (n, d), membership (ids (n,) or a soft (n, C) matrix); contributor 0 has one sample."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    if soft:
        member = rng.dirichlet(np.full(C, 0.5), size=n)
        return x, member
    ids = np.concatenate([[0], rng.integers(1, C, size=n - 1)])
    ids[1:C] = np.arange(1, C)  # every contributor present; contributor 0 exactly once
    return x, ids


def as_matrix(member: np.ndarray) -> np.ndarray:
    if member.ndim == 1:
        out = np.zeros((len(member), C))
        out[np.arange(len(member)), member] = 1.0
        return out
    return member


def pooled_weights(member: np.ndarray, mask: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weight of every sample in the coalition's mixture (contributor shares spread over its samples)."""
    r = as_matrix(member)
    share = np.where(mask, weights, 0.0)
    share = share / share.sum()
    w = np.zeros(len(r))
    for x in range(len(r)):  # explicit per-sample pooling
        for i in range(C):
            if r[x, i] > 0:
                w[x] += share[i] * r[x, i] / r[:, i].sum()
    return w


def coalitions(rng: np.random.Generator) -> np.ndarray:
    rows = [np.eye(C, dtype=bool)[i] for i in range(C)] + [np.ones(C, dtype=bool)]
    rows += [rng.random(C) < 0.5 for _ in range(6)]
    masks = np.array([r for r in rows if r.any()])
    return masks


def with_pairs(masks: np.ndarray, member: np.ndarray) -> np.ndarray:
    """Drop coalitions whose pooled mixture is a single sample."""
    return np.array([m for m in masks if (pooled_weights(member, m, np.ones(C)) > 0).sum() >= 2])


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# ----------------------------------------------------------------------- references
def ref_vendi(x: np.ndarray, w: np.ndarray, q: float = 1.0) -> float:
    """Vendi score from the pooled N x N weighted cosine kernel."""
    keep = w > 0
    e, ww = unit(x[keep]), w[keep]
    kernel = e @ e.T
    kw = np.sqrt(ww)[:, None] * kernel * np.sqrt(ww)[None, :]
    lam = np.clip(np.linalg.eigvalsh(kw), 0.0, None)
    lam = lam[lam > 1e-15]
    if q == 1:
        return float(np.exp(-np.sum(lam * np.log(lam))))
    if np.isinf(q):
        return float(1.0 / lam.max())
    return float(np.sum(lam**q) ** (1.0 / (1.0 - q)))


def ref_pairwise(x: np.ndarray, w: np.ndarray, metric: str = "cosine") -> float:
    """Mean distance over ordered pairs of distinct pooled samples, weighted by w_x w_y."""
    dist = cdist(x, x, metric=metric)
    num = den = 0.0
    for a in range(len(x)):
        for b in range(len(x)):
            if a != b:
                num += w[a] * w[b] * dist[a, b]
                den += w[a] * w[b]
    return num / den


def ref_cluster_entropy(x: np.ndarray, w: np.ndarray, centers: np.ndarray) -> float:
    assign = cdist(x, centers).argmin(axis=1)
    hist = np.bincount(assign, weights=w, minlength=len(centers))
    return float(entropy(hist, base=2))


def check(metric, x, member, reference, masks, weights, skip=None):
    metric.update(torch.as_tensor(x), torch.as_tensor(member))
    got = metric.compute_coalitions(masks, weights).numpy()
    for k, mask in enumerate(masks):
        w = pooled_weights(member, mask, weights)
        if skip is not None and skip(w):
            continue
        np.testing.assert_allclose(got[k], reference(x, w), rtol=RTOL, err_msg=f"coalition {mask}")
    # the full, unweighted set
    full = float(metric.compute())
    np.testing.assert_allclose(full, reference(x, np.full(len(x), 1.0 / len(x))), rtol=RTOL)


def single_sample(w: np.ndarray) -> bool:
    return int((w > 0).sum()) < 2


# ------------------------------------------------------------------------------ Vendi
@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("n,d", [(40, 6), (12, 16)])  # N > d and N < d
def test_vendi_matches_pooled_kernel(soft, n, d):
    rng = np.random.default_rng(1)
    x, member = make_data(n, d, soft=soft, seed=n + d)
    weights = rng.uniform(0.5, 3.0, size=C)
    check(ContributorVendiScore(num_contributors=C), x, member, ref_vendi, coalitions(rng), weights)


@pytest.mark.parametrize("order", [0.5, 2.0, float("inf")])
def test_vendi_orders(order):
    rng = np.random.default_rng(2)
    x, member = make_data(30, 5, seed=3)
    weights = rng.uniform(0.5, 3.0, size=C)
    check(
        ContributorVendiScore(order=order, num_contributors=C),
        x,
        member,
        lambda a, w: ref_vendi(a, w, order),
        coalitions(rng),
        weights,
    )


def test_vendi_bounds_and_duplicates():
    # identical embeddings: score 1; orthogonal ones with equal weight: score = their number
    metric = ContributorVendiScore(num_contributors=2)
    metric.update(
        torch.tensor([[1.0, 0, 0], [2.0, 0, 0], [0, 1.0, 0], [0, 0, 3.0]]), torch.tensor([0, 0, 1, 1])
    )
    vals = metric.compute_coalitions(np.array([[1, 0], [0, 1]], dtype=bool), np.ones(2))
    np.testing.assert_allclose(vals.numpy(), [1.0, 2.0], rtol=1e-9)


# ------------------------------------------------------------------ mean pairwise distance
@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("n,d", [(30, 6), (10, 16)])
def test_pairwise_cosine_matches_double_loop(soft, n, d):
    rng = np.random.default_rng(4)
    x, member = make_data(n, d, soft=soft, seed=n * d)
    weights = rng.uniform(0.5, 3.0, size=C)
    masks = coalitions(rng)
    masks = with_pairs(masks, member)  # a coalition of a one-sample contributor alone has no pair
    check(ContributorMeanPairwiseDistance(num_contributors=C), x, member, ref_pairwise, masks, weights)


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("soft", [False, True])
def test_pairwise_general_distance_matches_double_loop(symmetric, soft):
    rng = np.random.default_rng(5)
    x, member = make_data(25, 4, soft=soft, seed=11)
    weights = rng.uniform(0.5, 3.0, size=C)
    masks = coalitions(rng)
    masks = with_pairs(masks, member)
    metric = ContributorMeanPairwiseDistance(
        feature="image", distance="euclidean", num_contributors=C, block_size=7, symmetric=symmetric
    )
    check(metric, x, member, lambda a, w: ref_pairwise(a, w, "euclidean"), masks, weights)


def test_pairwise_callable_distance_and_cache_invalidation():
    rng = np.random.default_rng(6)
    x, ids = make_data(20, 3, seed=12)
    calls = []

    def manhattan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return torch.cdist(a.double(), b.double(), p=1)

    metric = ContributorMeanPairwiseDistance(distance=manhattan, num_contributors=C, block_size=8)
    metric.update(torch.as_tensor(x[:12]), torch.as_tensor(ids[:12]))
    masks, weights = np.ones((1, C), dtype=bool), rng.uniform(0.5, 2, size=C)
    first = metric.compute_coalitions(masks, weights)
    n_calls = len(calls)
    metric.compute_coalitions(masks, weights)
    metric.compute()
    metric.compute_coalitions(masks, weights)
    assert len(calls) == n_calls  # pair sums are cached between updates
    np.testing.assert_allclose(
        first[0], ref_pairwise(x[:12], pooled_weights(ids[:12], masks[0], weights), "cityblock"), rtol=RTOL
    )
    metric.update(torch.as_tensor(x[12:]), torch.as_tensor(ids[12:]))
    second = metric.compute_coalitions(masks, weights)
    np.testing.assert_allclose(
        second[0], ref_pairwise(x, pooled_weights(ids, masks[0], weights), "cityblock"), rtol=RTOL
    )


def test_pairwise_cosine_paths_agree_and_forward_keeps_states():
    rng = np.random.default_rng(7)
    x, member = make_data(24, 5, soft=True, seed=18)
    masks, weights = coalitions(rng), rng.uniform(0.5, 3.0, size=C)
    closed = ContributorMeanPairwiseDistance(num_contributors=C)
    general = ContributorMeanPairwiseDistance(distance=cosine_distance, num_contributors=C, block_size=5)
    for metric in (closed, general):
        metric.update(torch.as_tensor(x[:20]), torch.as_tensor(member[:20]))
        metric.compute_coalitions(masks, weights)  # fills the cache of the general path
        metric(torch.as_tensor(x[20:]), torch.as_tensor(member[20:]))  # forward: batch value + accumulate
    np.testing.assert_allclose(
        general.compute_coalitions(masks, weights).numpy(),
        closed.compute_coalitions(masks, weights).numpy(),
        rtol=1e-9,
    )
    np.testing.assert_allclose(float(general.compute()), ref_pairwise(x, np.full(24, 1 / 24)), rtol=RTOL)


def test_pairwise_single_sample_coalition_raises():
    x, ids = make_data(20, 3, seed=13)
    metric = ContributorMeanPairwiseDistance(num_contributors=C)
    metric.update(torch.as_tensor(x), torch.as_tensor(ids))
    with pytest.raises(ValueError, match="single sample"):
        metric.compute_coalitions(np.eye(C, dtype=bool)[:1], np.ones(C))


# ------------------------------------------------------------------------- cluster entropy
def test_fit_ward_centers_are_ward_cluster_means():
    rng = np.random.default_rng(7)
    blobs = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    train = np.concatenate([b + 0.3 * rng.normal(size=(15, 2)) for b in blobs])
    centers = fit_ward_centers(train, n_clusters=3).numpy()
    labels = AgglomerativeClustering(n_clusters=3, linkage="ward").fit_predict(train)
    expected = np.stack([train[labels == j].mean(0) for j in range(3)])
    np.testing.assert_allclose(np.sort(centers, axis=0), np.sort(expected, axis=0), rtol=1e-12)
    np.testing.assert_allclose(np.sort(centers, axis=0), np.sort(blobs, axis=0), atol=0.5)


@pytest.mark.parametrize("soft", [False, True])
def test_cluster_entropy_matches_pooled_histogram(soft):
    rng = np.random.default_rng(8)
    train = rng.normal(size=(60, 4))
    x, member = make_data(40, 4, soft=soft, seed=14)
    weights = rng.uniform(0.5, 3.0, size=C)
    metric = ContributorClusterEntropy.from_training_embeddings(train, n_clusters=6, num_contributors=C)
    centers = metric.centers.numpy().copy()
    assert centers.shape == (6, 4)
    check(metric, x, member, lambda a, w: ref_cluster_entropy(a, w, centers), coalitions(rng), weights)
    vals = metric.compute_coalitions(coalitions(rng), weights).numpy()
    assert (vals >= 0).all() and (vals <= np.log2(6) + 1e-12).all()


def test_cluster_entropy_needs_centers():
    with pytest.raises(ValueError, match="from_training_embeddings"):
        ContributorClusterEntropy(num_contributors=C)


# ----------------------------------------------------------- DDP-style merge and state dict
FACTORIES = {
    "vendi": lambda: ContributorVendiScore(num_contributors=C),
    "vendi_dim": lambda: ContributorVendiScore(num_contributors=C, embedding_dim=5),
    "pairwise_cosine": lambda: ContributorMeanPairwiseDistance(num_contributors=C),
    "pairwise_euclidean": lambda: ContributorMeanPairwiseDistance(distance="euclidean", num_contributors=C),
    "cluster": lambda: ContributorClusterEntropy(
        centers=np.random.default_rng(0).normal(size=(4, 5)), num_contributors=C
    ),
}


@pytest.mark.parametrize("name", sorted(FACTORIES))
@pytest.mark.parametrize("how", ["merge_state", "summed_states"])
def test_split_updates_reduce_to_one_metric(name, how):
    rng = np.random.default_rng(9)
    x, member = make_data(30, 5, soft=True, seed=15)
    x_t, m_t = torch.as_tensor(x), torch.as_tensor(member)
    whole, left, right = FACTORIES[name](), FACTORIES[name](), FACTORIES[name]()
    whole.update(x_t, m_t)
    left.update(x_t[:13], m_t[:13])
    right.update(x_t[13:], m_t[13:])
    if how == "merge_state":
        left.merge_state(right)
    else:  # what a DDP "sum" / "cat" reduction does to the two ranks' states
        for key, value in right.metric_state.items():
            mine = getattr(left, key)
            setattr(left, key, mine + value)
    masks, weights = coalitions(rng), rng.uniform(0.5, 3.0, size=C)
    np.testing.assert_allclose(
        left.compute_coalitions(masks, weights).numpy(),
        whole.compute_coalitions(masks, weights).numpy(),
        rtol=1e-9,
    )
    np.testing.assert_allclose(float(left.compute()), float(whole.compute()), rtol=1e-9)


@pytest.mark.filterwarnings("ignore:The ``compute`` method")
@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_merge_with_a_rank_that_saw_nothing(name):
    x, member = make_data(20, 5, seed=16)
    full, empty = FACTORIES[name](), FACTORIES[name]()
    full.update(torch.as_tensor(x), torch.as_tensor(member))
    expected = float(full.compute())
    empty.merge_state(full)
    np.testing.assert_allclose(float(empty.compute()), expected, rtol=1e-9)
    full.merge_state(FACTORIES[name]())
    np.testing.assert_allclose(float(full.compute()), expected, rtol=1e-9)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_state_dict_round_trip(name):
    rng = np.random.default_rng(10)
    x, member = make_data(25, 5, seed=17)
    metric = FACTORIES[name]()
    metric.update(torch.as_tensor(x), torch.as_tensor(member))
    restored = FACTORIES[name]()
    restored.load_state_dict(metric.state_dict())
    if name == "pairwise_cosine":  # a metric created without num_contributors learns it from the states
        restored = ContributorMeanPairwiseDistance()
        restored.load_state_dict(metric.state_dict())
    masks, weights = coalitions(rng), rng.uniform(0.5, 3.0, size=C)
    masks = with_pairs(masks, member)
    np.testing.assert_allclose(
        restored.compute_coalitions(masks, weights).numpy(),
        metric.compute_coalitions(masks, weights).numpy(),
        rtol=1e-12,
    )


def test_metadata():
    for factory in FACTORIES.values():
        metric = factory()
        assert metric.higher_is_better is True
        assert metric.feature == "embedding"


@pytest.mark.parametrize("soft", [False, True])
def test_vendi_sample_path_equals_the_former_dense_path(soft):
    """The former state, per-contributor sums of outer products of unit embeddings (C, d, d), mixed per coalition."""
    rng = np.random.default_rng(5)
    x, member = make_data(60, 9, soft=soft, seed=3)
    if not soft:
        member = np.eye(C)[member]  # ids -> one-hot rows
    metric = ContributorVendiScore(num_contributors=C)
    metric.update(torch.as_tensor(x), torch.as_tensor(member))
    masks, weights = coalitions(rng), rng.uniform(0.5, 3.0, size=C)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    outer = np.einsum("ni,nj,nk->ijk", member, unit, unit)
    got = metric.compute_coalitions(masks, weights).numpy()
    for value, mask in zip(got, masks, strict=True):
        share = np.where(mask, weights, 0.0) / weights[mask].sum()
        lam = np.linalg.eigvalsh(np.einsum("i,ijk->jk", share / member.sum(axis=0), outer)).clip(0)
        lam = lam[lam > 0] / lam.sum()
        assert value == pytest.approx(float(np.exp(-(lam * np.log(lam)).sum())), rel=1e-10)
