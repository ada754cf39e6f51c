"""ContributorFID: coalition values equal FID computed directly on the pooled, weighted samples."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from cleanfid.fid import frechet_distance as cleanfid_frechet_distance
from surrogateshap.metrics import ContributorFID, frechet_distance_batch, save_reference_statistics
from surrogateshap.metrics.fid import load_reference_statistics

RTOL = 1e-6

# clean-fid's frechet_distance (the comparison here) passes scipy's deprecated `disp`
pytestmark = pytest.mark.filterwarnings("ignore:The `disp` argument:DeprecationWarning")


def pooled_weights(member: np.ndarray, mask: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Sample weights of a coalition's mixture: w_x = sum_i a_i r_ix / count_i, a_i = n_i / n_S."""
    share = np.where(mask, weights, 0.0) / weights[mask].sum()
    return member @ (share / member.sum(axis=0))


def fid_direct(x: np.ndarray, w: np.ndarray, mu_r: np.ndarray, sigma_r: np.ndarray) -> float:
    """FID from np.average / np.cov(aweights, ddof=1) / scipy.linalg.sqrtm (independent formula)."""
    keep = w > 0
    mu = np.average(x[keep], axis=0, weights=w[keep])
    sigma = np.atleast_2d(np.cov(x[keep], rowvar=False, aweights=w[keep], ddof=1))
    covmean = scipy.linalg.sqrtm(sigma @ sigma_r).real
    return float(((mu - mu_r) ** 2).sum() + np.trace(sigma) + np.trace(sigma_r) - 2 * np.trace(covmean))


def one_hot(ids: np.ndarray, c: int) -> np.ndarray:
    out = np.zeros((ids.shape[0], c))
    out[np.arange(ids.shape[0]), ids] = 1.0
    return out


def make_reference(rng: np.random.Generator, d: int, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    feats = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) / np.sqrt(d) + 0.3
    return feats.mean(axis=0), np.cov(feats, rowvar=False)


def make_bank(rng: np.random.Generator, sizes: list[int], d: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.concatenate([np.full(n, i) for i, n in enumerate(sizes)])
    shift = rng.normal(size=(len(sizes), d))
    x = rng.normal(size=(ids.shape[0], d)) * rng.uniform(0.5, 2.0, size=d) + shift[ids]
    return x, ids


def random_masks(rng: np.random.Generator, c: int, k: int) -> np.ndarray:
    masks = rng.random((k, c)) < 0.5
    masks[masks.sum(axis=1) == 0, 0] = True
    singles = np.eye(c, dtype=bool)
    return np.concatenate([singles, np.ones((1, c), dtype=bool), masks])


def check_coalitions(metric, x, member, masks, weights, mu_r, sigma_r) -> None:
    got = metric.compute_coalitions(masks, weights).numpy()
    want = [fid_direct(x, pooled_weights(member, m, weights), mu_r, sigma_r) for m in masks]
    np.testing.assert_allclose(got, want, rtol=RTOL)


def test_hard_membership_unequal_weights_and_a_single_sample_contributor() -> None:
    rng = np.random.default_rng(0)
    d, sizes = 12, [40, 25, 1, 60, 33]
    mu_r, sigma_r = make_reference(rng, d)
    x, ids = make_bank(rng, sizes, d)
    metric = ContributorFID(reference=(mu_r, sigma_r), num_contributors=len(sizes))
    order = rng.permutation(len(ids))  # updates in shuffled batches of mixed contributors
    for batch in np.array_split(order, 4):
        metric.update(torch.from_numpy(x[batch]).float(), torch.from_numpy(ids[batch]))
    x32 = x.astype(np.float32).astype(np.float64)
    weights = rng.uniform(1, 100, size=len(sizes))
    masks = random_masks(rng, len(sizes), 12)
    masks = masks[~(masks.sum(axis=1) == 1) | ~masks[:, 2]]  # contributor 2 alone has one sample
    check_coalitions(metric, x32, one_hot(ids, len(sizes)), masks, weights, mu_r, sigma_r)
    # data sizes as weights, as ProxyGame uses them
    check_coalitions(metric, x32, one_hot(ids, len(sizes)), masks, np.array(sizes, float), mu_r, sigma_r)


def test_rank_deficient_covariances() -> None:
    rng = np.random.default_rng(1)
    d, sizes = 32, [4, 6, 3, 5, 9]  # every coalition but the largest has fewer samples than d
    mu_r, sigma_r = make_reference(rng, d)
    x, ids = make_bank(rng, sizes, d)
    metric = ContributorFID(reference=(mu_r, sigma_r), num_contributors=len(sizes))
    metric.update(torch.from_numpy(x), torch.from_numpy(ids))
    masks = random_masks(rng, len(sizes), 6)
    check_coalitions(metric, x, one_hot(ids, len(sizes)), masks, rng.uniform(1, 10, len(sizes)), mu_r, sigma_r)


def test_rank_deficient_reference() -> None:
    rng = np.random.default_rng(10)
    d, sizes = 16, [30, 20, 25]
    ref = rng.normal(size=(10, d))  # 10 reference samples in 16-d: a singular reference covariance
    mu_r, sigma_r = ref.mean(axis=0), np.cov(ref, rowvar=False)
    x, ids = make_bank(rng, sizes, d)
    metric = ContributorFID(reference=ref, num_contributors=3)
    metric.update(torch.from_numpy(x), torch.from_numpy(ids))
    masks = random_masks(rng, 3, 3)
    check_coalitions(metric, x, one_hot(ids, 3), masks, np.array(sizes, float), mu_r, sigma_r)


def test_soft_membership() -> None:
    rng = np.random.default_rng(2)
    d, n, c = 10, 90, 4
    mu_r, sigma_r = make_reference(rng, d)
    x = rng.normal(size=(n, d)) + rng.normal(size=d)
    member = rng.dirichlet(np.full(c, 0.7), size=n)
    member[:10] = one_hot(rng.integers(0, c, 10), c)  # some hard rows among the soft ones
    metric = ContributorFID(reference=(mu_r, sigma_r), num_contributors=c)
    metric.update(torch.from_numpy(x[:50]), torch.from_numpy(member[:50]))
    metric.update(torch.from_numpy(x[50:]), torch.from_numpy(member[50:]))
    masks = random_masks(rng, c, 8)
    check_coalitions(metric, x, member, masks, rng.uniform(1, 5, c), mu_r, sigma_r)


def test_compute_is_the_unweighted_pooled_fid() -> None:
    rng = np.random.default_rng(3)
    d, sizes = 8, [30, 10, 45]
    mu_r, sigma_r = make_reference(rng, d)
    x, ids = make_bank(rng, sizes, d)
    metric = ContributorFID(reference=(mu_r, sigma_r), num_contributors=3)
    metric.update(torch.from_numpy(x), torch.from_numpy(ids))
    got = float(metric.compute())
    want = cleanfid_frechet_distance(x.mean(axis=0), np.cov(x, rowvar=False), mu_r, sigma_r)
    assert got == pytest.approx(want, rel=RTOL)
    assert got == pytest.approx(fid_direct(x, np.full(len(x), 1 / len(x)), mu_r, sigma_r), rel=RTOL)


def test_frechet_distance_batch_matches_cleanfid() -> None:
    rng = np.random.default_rng(4)
    d = 6
    mu_r, sigma_r = make_reference(rng, d)
    root = torch.from_numpy(scipy.linalg.sqrtm(sigma_r).real)
    mus, sigmas = [], []
    for _ in range(3):
        a = rng.normal(size=(d, d))
        mus.append(rng.normal(size=d))
        sigmas.append(a @ a.T / d)
    got = frechet_distance_batch(
        torch.tensor(np.array(mus)),
        torch.tensor(np.array(sigmas)),
        torch.from_numpy(mu_r),
        root,
        float(np.trace(sigma_r)),
    )
    want = [cleanfid_frechet_distance(m, s, mu_r, sigma_r) for m, s in zip(mus, sigmas, strict=True)]
    np.testing.assert_allclose(got.numpy(), want, rtol=RTOL)


def test_distributed_halves_sum_to_the_whole() -> None:
    rng = np.random.default_rng(5)
    d, sizes = 8, [20, 15, 30, 12]
    mu_r, sigma_r = make_reference(rng, d)
    x, ids = make_bank(rng, sizes, d)
    whole = ContributorFID(reference=(mu_r, sigma_r), num_contributors=4)
    whole.update(torch.from_numpy(x), torch.from_numpy(ids))
    halves = [ContributorFID(reference=(mu_r, sigma_r), num_contributors=4) for _ in range(2)]
    order = rng.permutation(len(ids))
    for metric, part in zip(halves, np.array_split(order, 2), strict=True):
        metric.update(torch.from_numpy(x[part]), torch.from_numpy(ids[part]))
    masks = random_masks(rng, 4, 5)
    weights = np.array(sizes, float)
    want = whole.compute_coalitions(masks, weights)
    # dist_reduce_fx="sum": add the state tensors by hand ...
    summed = ContributorFID(reference=(mu_r, sigma_r), num_contributors=4)
    for name in summed._defaults:
        setattr(summed, name, getattr(halves[0], name) + getattr(halves[1], name))
    torch.testing.assert_close(summed.compute_coalitions(masks, weights), want, rtol=1e-10, atol=1e-10)
    # ... and through torchmetrics' merge_state
    halves[0].merge_state(halves[1])
    torch.testing.assert_close(halves[0].compute_coalitions(masks, weights), want, rtol=1e-10, atol=1e-10)


def test_state_dict_round_trip(tmp_path) -> None:
    rng = np.random.default_rng(6)
    d, sizes = 8, [20, 15, 30]
    mu_r, sigma_r = make_reference(rng, d)
    x, ids = make_bank(rng, sizes, d)
    metric = ContributorFID(reference=(mu_r, sigma_r), num_contributors=3)
    metric.update(torch.from_numpy(x), torch.from_numpy(ids))
    state = metric.state_dict()
    assert {"count", "membership_gram", "sum_features", "sum_sqnorm", "samples", "entry_count"} <= set(state)
    torch.save(state, tmp_path / "fid.pt")
    masks = random_masks(rng, 3, 4)
    for n in (3, None):  # a fresh metric with or without num_contributors
        fresh = ContributorFID(reference=(mu_r, sigma_r), num_contributors=n)
        fresh.load_state_dict(torch.load(tmp_path / "fid.pt"))
        torch.testing.assert_close(
            fresh.compute_coalitions(masks, np.ones(3)), metric.compute_coalitions(masks, np.ones(3))
        )


def test_reference_formats(tmp_path) -> None:
    rng = np.random.default_rng(7)
    d = 5
    feats = rng.normal(size=(50, d))
    mu, sigma = feats.mean(axis=0), np.cov(feats, rowvar=False)
    # clean-fid's stats format: np.savez_compressed(outf, mu=mu, sigma=sigma), and its KID "feats" file
    cleanfid_file = tmp_path / "mydata_clean_custom_na.npz"
    np.savez_compressed(cleanfid_file, mu=mu, sigma=sigma)
    kid_file = tmp_path / "mydata_clean_custom_na_kid.npz"
    np.savez_compressed(kid_file, feats=feats)
    ours = save_reference_statistics(tmp_path / "ref" / "stats.npz", feats)
    for reference in (
        feats,
        torch.from_numpy(feats),
        (mu, sigma),
        {"mu": mu, "sigma": sigma},
        str(cleanfid_file),
        kid_file,
        ours,
    ):
        got_mu, got_sigma = load_reference_statistics(reference)
        np.testing.assert_allclose(got_mu, mu, rtol=1e-12)
        np.testing.assert_allclose(got_sigma, sigma, rtol=1e-12, atol=1e-14)
    x = rng.normal(size=(30, d))
    values = []
    for reference in (feats, str(cleanfid_file), ours):
        metric = ContributorFID(reference=reference, num_contributors=1)
        metric.update(torch.from_numpy(x), torch.zeros(30, dtype=torch.long))
        values.append(float(metric.compute()))
    assert values == pytest.approx([fid_direct(x, np.full(30, 1 / 30), mu, sigma)] * 3, rel=RTOL)


def test_missing_reference_file_names_the_file_and_the_fix(tmp_path) -> None:
    missing = tmp_path / "cifar_ref.npz"
    with pytest.raises(FileNotFoundError) as err:
        ContributorFID(reference=missing, num_contributors=2)
    assert str(missing) in str(err.value)
    assert "save_reference_statistics" in str(err.value)
    with pytest.raises(ValueError, match="reference"):
        ContributorFID(num_contributors=2)
    bad = tmp_path / "bad.npz"
    np.savez(bad, something=np.zeros(3))
    with pytest.raises(ValueError, match="'mu' and 'sigma'"):
        ContributorFID(reference=bad)
    with pytest.raises(ValueError, match=r"\(d, d\)"):
        ContributorFID(reference=(np.zeros(3), np.eye(4)))


def test_bad_inputs() -> None:
    rng = np.random.default_rng(8)
    mu_r, sigma_r = make_reference(rng, 4)
    metric = ContributorFID(reference=(mu_r, sigma_r), num_contributors=3)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        metric.update(torch.zeros(5, 3), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="NaN"):
        metric.update(torch.full((2, 4), float("nan")), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="samples"):
        metric.update(torch.zeros(5, 4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="out of range"):
        metric.update(torch.zeros(2, 4), torch.tensor([0, 3]))
    metric = ContributorFID(reference=(mu_r, sigma_r), num_contributors=3)
    metric.update(torch.from_numpy(rng.normal(size=(7, 4))), torch.tensor([0, 0, 0, 1, 1, 1, 2]))
    with pytest.raises(ValueError, match="single sample"):
        metric.compute_coalitions(np.array([[False, False, True]]), np.ones(3))
    with pytest.raises(ValueError, match="empty"):
        metric.compute_coalitions(np.zeros((1, 3), bool), np.ones(3))
    with pytest.raises(ValueError, match="bool"):
        metric.compute_coalitions(np.ones((1, 2), bool), np.ones(3))
    unset = ContributorFID(reference=(mu_r, sigma_r))
    with pytest.raises(ValueError, match="num_contributors"):
        unset.update(torch.zeros(2, 4), torch.zeros(2, dtype=torch.long))


def test_wide_features_for_a_few_coalitions() -> None:
    # 2048-d (Inception) works the same but takes minutes on a 2-core machine; 256-d keeps the test short
    rng = np.random.default_rng(9)
    d, sizes = 256, [40, 60]
    mu_r = rng.normal(size=d) * 0.1
    a = rng.normal(size=(d, 32)) * 0.2
    root = a @ a.T + 0.2 * np.eye(d)  # symmetric PSD, so the reference covariance's root is known
    sigma_r = root @ root
    x, ids = make_bank(rng, sizes, d)
    metric = ContributorFID(reference=(mu_r, sigma_r), num_contributors=2)
    metric.update(torch.from_numpy(x), torch.from_numpy(ids))
    masks = np.array([[True, False], [True, True]])
    got = metric.compute_coalitions(masks, np.array([1.0, 3.0])).numpy()
    # independent: eigenvalues of root S root in numpy (no scipy sqrtm)
    for value, mask in zip(got, masks, strict=True):
        w = pooled_weights(one_hot(ids, 2), mask, np.array([1.0, 3.0]))
        keep = w > 0
        mu = np.average(x[keep], axis=0, weights=w[keep])
        s = np.cov(x[keep], rowvar=False, aweights=w[keep], ddof=1)
        ev = np.linalg.eigvalsh(root @ s @ root)
        want = ((mu - mu_r) ** 2).sum() + np.trace(s) + np.trace(sigma_r) - 2 * np.sqrt(ev.clip(0)).sum()
        assert value == pytest.approx(want, rel=RTOL)


def dense_path_fid(x, member, masks, weights, mu_r, sigma_r) -> np.ndarray:
    """The former implementation, per-contributor sums of outer products (C, d, d) mixed per coalition:
    the exactness reference of the sample-based path."""
    root = scipy.linalg.sqrtm(sigma_r).real
    root = (root + root.T) / 2
    s1, s2, count = member.T @ x, np.einsum("ni,nj,nk->ijk", member, x, x), member.sum(axis=0)
    gram = member.T @ member
    out = []
    for mask in masks:
        share = np.where(mask, weights, 0.0) / weights[mask].sum()
        alpha = share / count
        mu, second = alpha @ s1, np.einsum("i,ijk->jk", alpha, s2)
        cov = (second - np.outer(mu, mu)) / (1 - alpha @ gram @ alpha)
        ev = np.linalg.eigvalsh(root @ ((cov + cov.T) / 2) @ root)
        out.append(((mu - mu_r) ** 2).sum() + np.trace(cov) + np.trace(sigma_r) - 2 * np.sqrt(ev.clip(0)).sum())
    return np.array(out)


@pytest.mark.parametrize("soft", [False, True])
def test_sample_path_equals_the_former_dense_path(soft) -> None:
    """Coalitions with more samples than dimensions (the d x d Gram) and fewer (the K x K one) alike."""
    rng = np.random.default_rng(12)
    d, sizes = 24, [6, 40, 9, 30, 12]
    mu_r, sigma_r = make_reference(rng, d)
    x, ids = make_bank(rng, sizes, d)
    member = one_hot(ids, len(sizes))
    if soft:
        member = 0.8 * member + 0.2 * np.roll(member, 1, axis=1)
    metric = ContributorFID(reference=(mu_r, sigma_r), num_contributors=len(sizes))
    metric.update(torch.from_numpy(x), torch.from_numpy(member) if soft else torch.from_numpy(ids))
    masks = random_masks(rng, len(sizes), 10)
    weights = rng.uniform(1, 5, len(sizes))
    got = metric.compute_coalitions(masks, weights).numpy()
    want = dense_path_fid(x, member, masks, weights, mu_r, sigma_r)
    samples = masks.astype(float) @ (member > 0).sum(axis=0)
    full_rank = samples > d
    assert full_rank.any() and (~full_rank).any()
    np.testing.assert_allclose(got[full_rank], want[full_rank], rtol=1e-10)
    # with fewer samples than dimensions the covariance is singular: the d x d path adds square roots of
    # rounding-level eigenvalues (~1e-8 each), which the K x K Gram never forms; they agree to that noise
    np.testing.assert_allclose(got[~full_rank], want[~full_rank], rtol=1e-7)


def test_a_bad_reference_file_is_one_line_naming_it(tmp_path):
    (tmp_path / "text.npz").write_text("not an archive")
    np.save(tmp_path / "one.npy", np.zeros(3))
    (tmp_path / "one.npy").rename(tmp_path / "one.npz")
    np.savez(tmp_path / "nan.npz", mu=np.zeros(2), sigma=np.full((2, 2), np.nan))
    np.savez(tmp_path / "shape.npz", mu=np.zeros(3), sigma=np.eye(2))
    for name, message in [("text", "is not a NumPy .npz archive"), ("one", "holds one array"),
                          ("nan", "NaN or infinite"), ("shape", r"got \(3,\) and \(2, 2\)")]:
        with pytest.raises(ValueError, match=message) as info:
            load_reference_statistics(tmp_path / f"{name}.npz")
        assert f"{name}.npz" in str(info.value) and "\n" not in str(info.value)
