"""Benchmark: FID of many coalitions from one contributor bank vs pooling + clean-fid per coalition.

20 contributors x 256 samples of 2048-d features (synthetic, non-negative like Inception pool3),
200 Shapley-kernel coalitions (``sample_coalitions(20, 202, seed=0)`` without its empty and full
rows). Equal ``n_examples`` and equal sample counts, so plain pooling of a coalition's features
weights samples exactly like the proxy game does.

- proxy: ``ProxyGame(bank, ContributorFID(...))`` over all coalitions (includes feeding the bank).
- baseline: per coalition, pool its features, mean/covariance with numpy, then
  ``cleanfid.fid.frechet_distance``.

Prints both times, the ratio and the max relative difference of the values. The baseline is slow
(a 2048x2048 ``sqrtm`` per coalition); ``--baseline-coalitions`` runs it on the first B coalitions
and extrapolates per coalition.

    python benchmarks/coalition_eval.py [--coalitions 200] [--baseline-coalitions 200]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time
import warnings

import numpy as np
import torch


def make_features(n_contributors: int, m: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Contributor-specific low-rank structure plus noise, passed through a ReLU (float32)."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(64, d)) / 8
    feats = []
    for i in range(n_contributors):
        centre = rng.normal(size=d) * 0.3 + 0.2 * (i % 5)
        latent = rng.normal(size=(m, 64)) * (0.5 + i / n_contributors)
        feats.append(np.maximum(centre + latent @ basis + rng.normal(size=(m, d)) * 0.2, 0.0))
    return np.concatenate(feats).astype(np.float32), np.repeat(np.arange(n_contributors), m)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contributors", type=int, default=20)
    parser.add_argument("--samples", type=int, default=256, help="bank samples per contributor")
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--coalitions", type=int, default=200, help="coalitions for the proxy game")
    parser.add_argument(
        "--baseline-coalitions", type=int, default=None, help="run the clean-fid baseline on the first B only"
    )
    parser.add_argument(
        "--extrapolate-to", type=int, default=200, help="also print both times extrapolated to this many coalitions"
    )
    parser.add_argument("--batch-size", type=int, default=256, help="ProxyGame batch_size")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from cleanfid.fid import frechet_distance
    from surrogateshap.metrics import ContributorFID

    from surrogateshap.bank import ContributorBank
    from surrogateshap.coalitions import sample_coalitions
    from surrogateshap.games import ProxyGame

    c, m, d = args.contributors, args.samples, args.dim
    feats, owner = make_features(c, m, d, seed=0)
    ids = [f"contributor{i:02d}" for i in range(c)]
    ref_feats, _ = make_features(8, 512, d, seed=1)
    ref64 = ref_feats.astype(np.float64)
    mu_ref, sigma_ref = ref64.mean(axis=0), np.cov(ref64, rowvar=False)
    masks = sample_coalitions(c, args.coalitions + 2, seed=0).masks[2:]
    k = masks.shape[0]
    kb = k if args.baseline_coalitions is None else min(args.baseline_coalitions, k)
    print(
        f"bank: {c} contributors x {m} samples, d = {d}; {k} coalitions (sizes {masks.sum(1).min()}"
        f"..{masks.sum(1).max()}); torch threads {torch.get_num_threads()}"
    )

    bank = ContributorBank({"inception": feats}, [ids[i] for i in owner], dict.fromkeys(ids, 500))
    fid = ContributorFID(feature="inception", reference=(mu_ref, sigma_ref))
    game = ProxyGame(bank, fid, v_empty=0.0, batch_size=args.batch_size)
    t0 = time.perf_counter()
    game.prepare()
    t_feed = time.perf_counter() - t0
    t0 = time.perf_counter()
    proxy = game(masks)
    t_eval = time.perf_counter() - t0
    t_proxy = t_feed + t_eval
    print(
        f"proxy game: {t_proxy:.2f} s for {k} coalitions (feed bank {t_feed:.2f} s + evaluate "
        f"{t_eval:.2f} s; "
        f"{t_eval / k * 1000:.1f} ms per coalition)"
    )

    baseline = np.empty(kb)
    singular = 0
    t0 = time.perf_counter()
    for row in range(kb):
        pooled = feats[masks[row][owner]].astype(np.float64)
        mu, sigma = pooled.mean(axis=0), np.cov(pooled, rowvar=False)
        buffer = io.StringIO()
        with warnings.catch_warnings(), contextlib.redirect_stdout(buffer):
            warnings.simplefilter("ignore")
            baseline[row] = frechet_distance(mu, sigma, mu_ref, sigma_ref)
        singular += "singular" in buffer.getvalue()
    t_base = time.perf_counter() - t0
    per_base = t_base / kb
    print(
        f"pooled clean-fid: {t_base:.2f} s for {kb} coalitions ({per_base * 1000:.1f} ms per coalition"
        + (f"; extrapolated to {k}: {per_base * k:.1f} s" if kb < k else "")
        + (f"; clean-fid added eps to the diagonal for {singular}" if singular else "")
        + ")"
    )
    ratio = per_base * k / t_proxy
    print(
        f"speed-up (baseline over proxy, {k} coalitions, proxy incl. feeding): {ratio:.1f}x; "
        f"per coalition excluding feeding: {per_base / (t_eval / k):.1f}x"
    )
    if args.extrapolate_to != k:
        n_x = args.extrapolate_to
        print(
            f"extrapolated to {n_x} coalitions: proxy {t_feed + t_eval / k * n_x:.0f} s, "
            f"pooled clean-fid {per_base * n_x:.0f} s ({per_base * n_x / (t_feed + t_eval / k * n_x):.1f}x)"
        )
    rel = np.abs(proxy[:kb] - baseline) / np.abs(baseline)
    print(
        f"FID values: {baseline.min():.3f} .. {baseline.max():.3f}; max relative difference "
        f"{rel.max():.2e} (median {np.median(rel):.2e}) over {kb} coalitions"
    )


if __name__ == "__main__":
    main()
