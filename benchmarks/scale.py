"""Hundreds to thousands of contributors: memory and time of the games, the estimators and the outputs.

Synthetic banks stand in for real ones (what is measured is the library's cost, not a model's):
``n`` contributors x ``m`` samples with 2048-d "Inception" features (FID), a 768-d embedding
(Vendi; cluster entropy over 20 Ward clusters of 2,000 "training" embeddings) and a score (mean).
Every stage runs in its own process, so its peak RSS is its own.

    python benchmarks/scale.py resources --n 20 258 1000      # per n: peak RSS, game build, 100 evaluations
    python benchmarks/scale.py estimators --n 258 --budget 1000 [--loaded]   # one mean utility
    python benchmarks/scale.py end-to-end --n 1000 --budget 4000 --method kernelshap   # bank -> outputs
    python benchmarks/scale.py parallel --n 20 --budget 512 --n-jobs 1 2   # four utilities, 1 vs 2 threads
    python benchmarks/scale.py parallel --n 258 --budget 1000 --utilities mean cluster_entropy [--loaded]  # fitting
    python benchmarks/scale.py accuracy --n 1000 --budgets 1000 2000 4000 8000 --methods kernelshap permutation
    python benchmarks/scale.py report                          # benchmarks/results/scale.md

Results accumulate in ``benchmarks/results/scale.json`` (one entry per measured case, replaced when
measured again). ``--loaded`` runs one CPU-bound process beside the measurement, as a training job would.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "scale.json"
REPORT = RESULTS.with_suffix(".md")
SAMPLES = {20: 50, 258: 50, 1000: 20}  # m per contributor, as the issue sets them
FID_DIM, EMBED_DIM = 2048, 768


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # Linux: kilobytes


def synthetic_bank(n: int, m: int, seed: int = 0):
    """A bank of ``n`` contributors x ``m`` samples whose contributors differ in mean and spread."""
    from surrogateshap.bank import ContributorBank

    rng = np.random.default_rng(seed)
    owner = np.repeat(np.arange(n), m)
    shift = rng.normal(size=(n, 32)) * 0.5
    mix = rng.normal(size=(32, FID_DIM)) / np.sqrt(32)
    inception = (shift[owner] @ mix + rng.normal(size=(n * m, FID_DIM))).astype(np.float32)
    clip = (shift[owner] @ rng.normal(size=(32, EMBED_DIM)) + rng.normal(size=(n * m, EMBED_DIM))).astype(np.float32)
    score = (shift[owner, 0] + rng.normal(size=n * m)).astype(np.float32)
    ids = [f"c{i:04d}" for i in range(n)]
    sizes = {cid: int(s) for cid, s in zip(ids, rng.integers(20, 400, size=n))}
    return ContributorBank({"inception": inception, "clip": clip, "score": score}, [ids[o] for o in owner], sizes)


def utilities(seed: int = 0) -> dict[str, Any]:
    from surrogateshap.metrics import ContributorClusterEntropy, ContributorFID, ContributorMean, ContributorVendiScore

    rng = np.random.default_rng(seed + 1)
    reference = (rng.normal(size=FID_DIM) * 0.1, np.eye(FID_DIM))
    training = rng.normal(size=(2000, EMBED_DIM))
    return {
        "fid": ContributorFID(feature="inception", reference=reference),
        "mean": ContributorMean(feature="score"),
        "vendi": ContributorVendiScore(feature="clip"),
        "cluster_entropy": ContributorClusterEntropy.from_training_embeddings(training, 20, feature="clip"),
    }


def _save(key: str, entry: dict[str, Any]) -> None:
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    results[key] = {**entry, "measured": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(),
                    "load": os.getloadavg()[0]}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    print(key, json.dumps(entry), flush=True)


def _spin() -> None:  # pragma: no cover - runs in a child process
    while True:
        pass


class _Load:
    """One CPU-bound process beside the measurement (``active=False``: none)."""

    def __init__(self, active: bool) -> None:
        self.active = active
        self.process = None

    def __enter__(self) -> _Load:
        if self.active:
            self.process = multiprocessing.get_context("spawn").Process(target=_spin, daemon=True)
            self.process.start()
            time.sleep(1.0)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.join()


# ----------------------------------------------------------------------------- stages (each in its own process)
def run_resources(n: int) -> dict[str, Any]:
    from surrogateshap.coalitions import sample_coalitions
    from surrogateshap.games import ProxyGame

    tic = time.perf_counter()
    bank = synthetic_bank(n, SAMPLES[n])
    entry: dict[str, Any] = {"n": n, "m": SAMPLES[n], "bank_samples": len(bank),
                             "bank_seconds": time.perf_counter() - tic}
    masks = sample_coalitions(n, 102, "shapley", seed=0).masks[2:]  # 100 coalitions of Shapley-kernel sizes
    for name, metric in utilities().items():
        game = ProxyGame(bank, metric, v_empty=0.0)
        tic = time.perf_counter()
        game.prepare()  # the bank fed into the metric's states
        entry[f"{name}_build_seconds"] = time.perf_counter() - tic
        tic = time.perf_counter()
        game(masks)
        entry[f"{name}_seconds_per_100"] = time.perf_counter() - tic
        entry[f"{name}_peak_gb_after"] = _peak_gb()
        del game
    entry["peak_rss_gb"] = _peak_gb()
    return entry


def mean_game(n: int):
    from surrogateshap.metrics import ContributorMean

    from surrogateshap.games import ProxyGame

    return ProxyGame(synthetic_bank(n, SAMPLES[n]), ContributorMean(feature="score"), v_empty=0.0)


def run_estimators(n: int, budget: int, loaded: bool) -> dict[str, Any]:
    """KernelSHAP and SurrogateSHAP (defaults) on one mean utility; ``loaded`` only labels the entry (the
    parent runs the load process beside this one)."""
    from surrogateshap import estimate
    from surrogateshap.games import CachedGame

    entry: dict[str, Any] = {"n": n, "budget": budget, "loaded": loaded}
    for method in ("kernelshap", "surrogateshap"):
        game = CachedGame(mean_game(n))
        game(np.zeros((1, n), bool) | np.eye(n, dtype=bool)[:1])  # feed the bank outside the clock
        tic = time.perf_counter()
        cpu = time.process_time()
        att = estimate(game, method, budget=budget, seed=0)
        entry[f"{method}_seconds"] = time.perf_counter() - tic
        entry[f"{method}_cpu_seconds"] = time.process_time() - cpu
        entry[f"{method}_evaluation_seconds"] = game.seconds
        if method == "surrogateshap":
            entry["surrogateshap_best_params"] = att.diagnostics["best_params"]
    entry["peak_rss_gb"] = _peak_gb()
    return entry


def run_end_to_end(n: int, budget: int, method: str) -> dict[str, Any]:
    """Bank (synthetic) to attribution.json and plots for the mean utility, through the attribution service."""
    from surrogateshap.metrics import ContributorMean

    from surrogateshap.attribution import EstimatorSettings, attribute_bank

    tic = time.perf_counter()
    bank = synthetic_bank(n, SAMPLES[n])
    bank_seconds = time.perf_counter() - tic
    tic = time.perf_counter()
    result = attribute_bank(bank, {"mean": ContributorMean(feature="score")}, {"mean": 0.0},
                            EstimatorSettings(method=method, budget=budget), progress=False)
    attribute_seconds = time.perf_counter() - tic
    tic = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        paths = result.write(out)
        sizes = {name: Path(p).stat().st_size for name, p in paths.items()}
    return {"n": n, "budget": budget, "method": method, "bank_seconds": bank_seconds,
            "attribute_seconds": attribute_seconds, "write_seconds": time.perf_counter() - tic,
            "output_bytes": sizes, "peak_rss_gb": _peak_gb(),
            "total_seconds": bank_seconds + attribute_seconds + (time.perf_counter() - tic)}


def run_parallel(n: int, budget: int, n_jobs: int, names: list[str] | None = None) -> dict[str, Any]:
    """Utilities of one bank (``names``; None: all four) through the attribution service, ``n_jobs`` at a time."""
    from surrogateshap.attribution import EstimatorSettings, attribute_bank

    bank = synthetic_bank(n, SAMPLES[n])
    metrics = {k: v for k, v in utilities().items() if names is None or k in names}
    tic = time.perf_counter()
    result = attribute_bank(bank, metrics, dict.fromkeys(metrics, 0.0),
                            EstimatorSettings(budget=budget, n_holdout=0, n_jobs=n_jobs), progress=False)
    values = {name: u["values"] for name, u in result.document["utilities"].items()}
    return {"n": n, "budget": budget, "n_jobs": n_jobs, "seconds": time.perf_counter() - tic, "values": values,
            "utilities": sorted(metrics)}


def accuracy_game(n: int, seed: int):
    """Linear terms for every player plus a few hundred sparse 2nd- and 3rd-order terms: closed-form values."""
    from surrogateshap.games import MoebiusGame

    rng = np.random.default_rng(seed)
    terms = [np.eye(n, dtype=bool)]
    coefs = [rng.normal(size=n)]
    for order, count in ((2, 300), (3, 100)):
        for _ in range(count):
            mask = np.zeros(n, dtype=bool)
            mask[rng.choice(n, size=order, replace=False)] = True
            terms.append(mask[None])
            coefs.append(rng.normal(size=1) * 2.0 / order)
    return MoebiusGame(np.concatenate(terms), np.concatenate(coefs))


def run_accuracy(n: int, budget: int, method: str, seed: int) -> dict[str, Any]:
    from scipy.stats import spearmanr

    from surrogateshap import estimate

    game = accuracy_game(n, seed)
    exact = game.shapley_values()
    options = {"sampling": "leverage"} if method == "leverageshap" else {}
    tic = time.perf_counter()
    try:
        att = estimate(game, "kernelshap" if method == "leverageshap" else method, budget=budget, seed=seed,
                       **options)
    except ValueError as err:  # e.g. a budget too small for one pair of permutations of n players
        return {"n": n, "budget": budget, "method": method, "seed": seed, "skipped": str(err)}
    return {"n": n, "budget": budget, "method": method, "seed": seed, "seconds": time.perf_counter() - tic,
            "error": float(np.linalg.norm(att.values - exact) / np.linalg.norm(exact)),
            "spearman": float(spearmanr(att.values, exact).statistic)}


def _utilities_of(entry: dict[str, Any]) -> str:
    return ", ".join(entry.get("utilities", sorted(entry["values"])))


def _in_child(fn, *args: Any) -> dict[str, Any]:
    """Run ``fn(*args)`` in a fresh process (its own peak RSS) and return its result."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(fn, args)


# ----------------------------------------------------------------------------- report
def write_report() -> Path:
    results = json.loads(RESULTS.read_text())
    lines = ["# Scale (written by benchmarks/scale.py)", "",
             "Synthetic banks: n contributors x m samples, d = 2048 (FID), 768 (Vendi, cluster entropy).", ""]
    res = sorted((v for k, v in results.items() if k.startswith("resources/")), key=lambda e: e["n"])
    if res:
        lines += ["## Games: memory and time", "",
                  "| n | m | peak RSS GB | build s (fid / mean / vendi / entropy) "
                  "| s per 100 coalitions (fid / mean / vendi / entropy) |",
                  "|---|---|---|---|---|"]
        names = ("fid", "mean", "vendi", "cluster_entropy")
        for e in res:
            build = " / ".join(f"{e[f'{u}_build_seconds']:.2f}" for u in names)
            per = " / ".join(f"{e[f'{u}_seconds_per_100']:.2f}" for u in names)
            lines.append(f"| {e['n']} | {e['m']} | {e['peak_rss_gb']:.2f} | {build} | {per} |")
        lines.append("")
    est = sorted((v for k, v in results.items() if k.startswith("estimators/")),
                 key=lambda e: (e["n"], e["budget"], e["loaded"]))
    if est:
        lines += ["## Estimators on one mean utility (wall s, CPU s)", "",
                  "| n | budget | machine | KernelSHAP | SurrogateSHAP (defaults) | its chosen parameters |",
                  "|---|---|---|---|---|---|"]
        for e in est:
            machine = "one other CPU-bound process" if e["loaded"] else "quiet"
            lines.append(f"| {e['n']} | {e['budget']} | {machine} | {e['kernelshap_seconds']:.1f} "
                         f"({e['kernelshap_cpu_seconds']:.1f}) | {e['surrogateshap_seconds']:.1f} "
                         f"({e['surrogateshap_cpu_seconds']:.1f}) | {e['surrogateshap_best_params']} |")
        lines.append("")
    e2e = sorted((v for k, v in results.items() if k.startswith("end-to-end/")), key=lambda e: (e["n"], e["method"]))
    if e2e:
        lines += ["## Bank to attribution.json and plots, one mean utility", "",
                  "| n | budget | method | bank s | attribution s | outputs s | total s | peak RSS GB |",
                  "|---|---|---|---|---|---|---|---|"]
        for e in e2e:
            lines.append(f"| {e['n']} | {e['budget']} | {e['method']} | {e['bank_seconds']:.1f} | "
                         f"{e['attribute_seconds']:.1f} | {e['write_seconds']:.1f} | {e['total_seconds']:.1f} | "
                         f"{e['peak_rss_gb']:.2f} |")
        lines.append("")
    par = sorted((v for k, v in results.items() if k.startswith("parallel/")),
                 key=lambda e: (e["n"], _utilities_of(e), e.get("loaded", False), e["n_jobs"]))
    if par:
        lines += ["## Several utilities of one bank, 1 or 2 at a time (threads), SurrogateSHAP defaults", "",
                  "Before the threads (stop 21, processes): 0.91x on the four utilities at n = 20, 0.21x on "
                  "mean + cluster entropy at n = 258 (the workers' start-up and shipping the bank cost more than "
                  "the fits).", "",
                  "| n | budget | utilities | machine | at a time | wall s | speed-up | values equal to one at a time "
                  "|",
                  "|---|---|---|---|---|---|---|---|"]
        alone = {(e["n"], e["budget"], _utilities_of(e), e.get("loaded", False)): e for e in par if e["n_jobs"] == 1}
        for e in par:
            one = alone.get((e["n"], e["budget"], _utilities_of(e), e.get("loaded", False)))
            same = "-" if one is None else str(all(np.allclose(e["values"][k], one["values"][k], rtol=1e-9, atol=1e-12)
                                                   for k in one["values"]))
            ratio = "-" if one is None else f"{one['seconds'] / e['seconds']:.2f}x"
            machine = "one other CPU-bound process" if e.get("loaded") else "quiet"
            lines.append(f"| {e['n']} | {e['budget']} | {_utilities_of(e)} | {machine} | {e['n_jobs']} | "
                         f"{e['seconds']:.1f} | {ratio} | {same} |")
        lines.append("")
    acc = [v for k, v in results.items() if k.startswith("accuracy/") and "skipped" not in v]
    skipped = sorted({(v["method"], v["budget"]) for k, v in results.items() if "skipped" in v})
    if acc:
        lines += ["## Accuracy at 1,000 players (closed-form values; median over seeds)", "",
                  "Seconds are wall seconds on the machine as it was (`load`: its 1-minute load average when the row "
                  "was written; `-`: not recorded).", "",
                  "| method | budget | seeds | normalised L2 error | Spearman | seconds | load | measured |",
                  "|---|---|---|---|---|---|---|---|"]
        groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for e in acc:
            groups.setdefault((e["method"], e["budget"]), []).append(e)
        for (method, budget), rows in sorted(groups.items()):
            error, rho, seconds = (np.median([r[k] for r in rows]) for k in ("error", "spearman", "seconds"))
            loads = [r["load"] for r in rows if "load" in r]
            load = "-" if not loads else loads[0] if isinstance(loads[0], str) else f"{np.median(loads):.1f}"
            lines.append(f"| {method} | {budget} | {len(rows)} | {error:.4f} | {rho:.4f} | {seconds:.1f} | {load} | "
                         f"{max(r.get('measured', '') for r in rows)} |")
        lines += [f"| {method} | {budget} | - | budget too small | | | | |" for method, budget in skipped]
        lines.append("")
    REPORT.write_text("\n".join(lines))
    return REPORT


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="stage", required=True)
    res = sub.add_parser("resources")
    res.add_argument("--n", type=int, nargs="+", default=list(SAMPLES))
    est = sub.add_parser("estimators")
    est.add_argument("--n", type=int, default=258)
    est.add_argument("--budget", type=int, default=1000)
    est.add_argument("--loaded", action="store_true")
    e2e = sub.add_parser("end-to-end")
    e2e.add_argument("--n", type=int, default=1000)
    e2e.add_argument("--budget", type=int, default=4000)
    e2e.add_argument("--method", default="surrogateshap")
    par = sub.add_parser("parallel")
    par.add_argument("--n", type=int, default=20)
    par.add_argument("--budget", type=int, default=512)
    par.add_argument("--n-jobs", type=int, nargs="+", default=[1, 2])
    par.add_argument("--utilities", nargs="+", default=None, help="a subset of fid, mean, vendi, cluster_entropy")
    par.add_argument("--loaded", action="store_true")
    acc = sub.add_parser("accuracy")
    acc.add_argument("--n", type=int, default=1000)
    acc.add_argument("--budgets", type=int, nargs="+", default=[1000, 2000, 4000, 8000])
    acc.add_argument("--methods", nargs="+", default=["kernelshap", "leverageshap", "permutation", "surrogateshap"])
    acc.add_argument("--seeds", type=int, default=3)
    sub.add_parser("report")
    args = parser.parse_args(argv)
    if args.stage == "resources":
        for n in args.n:
            _save(f"resources/{n}", _in_child(run_resources, n))
    elif args.stage == "estimators":
        with _Load(args.loaded):
            entry = _in_child(run_estimators, args.n, args.budget, args.loaded)
        _save(f"estimators/{args.n}/{args.budget}/{'loaded' if args.loaded else 'quiet'}", entry)
    elif args.stage == "end-to-end":
        _save(f"end-to-end/{args.n}/{args.budget}/{args.method}",
              _in_child(run_end_to_end, args.n, args.budget, args.method))
    elif args.stage == "parallel":
        which = "" if args.utilities is None else "/" + "+".join(sorted(args.utilities))
        for n_jobs in args.n_jobs:
            with _Load(args.loaded):
                entry = {**run_parallel(args.n, args.budget, n_jobs, args.utilities), "loaded": args.loaded}
            _save(f"parallel/{args.n}/{args.budget}/{n_jobs}{which}{'/loaded' if args.loaded else ''}", entry)
    elif args.stage == "accuracy":
        for method in args.methods:
            for budget in args.budgets:
                for seed in range(args.seeds):
                    _save(f"accuracy/{args.n}/{method}/{budget}/{seed}",
                          _in_child(run_accuracy, args.n, budget, method, seed))
    if args.stage != "report" or RESULTS.is_file():
        print(f"wrote {write_report()}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
