"""Accuracy of every Shapley estimator against exact values, budget by budget.

Games of 12 to 20 players with closed-form Shapley values (Moebius games with second- and
third-order interactions). For each budget and seed, every method gets the same budget of
distinct coalitions; we report the normalised L2 error ||phi_hat - phi|| / ||phi|| and the
Spearman correlation with the exact values, median over seeds, and the ratio of each
method's error to SurrogateSHAP's (cross-validated parameters, no adjustment).

    python benchmarks/estimator_accuracy.py --out benchmarks/results/estimator_accuracy.csv

Rows are appended to the CSV as they finish, so an interrupted run resumes; ``--workers``
runs (game, budget, seed) tasks in parallel processes.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

GAMES = {
    "moebius12_order3": dict(n=12, order=3, n_terms=30, seed=101),
    "moebius16_order2": dict(n=16, order=2, n_terms=40, seed=102),
    "moebius20_order3": dict(n=20, order=3, n_terms=60, seed=103),
}
BUDGETS = (64, 128, 256, 512, 1024)
REFERENCE = "surrogateshap_cv"
FIELDS = ["game", "budget", "seed", "method", "error", "spearman", "seconds"]


def _game(name):
    from surrogateshap.games import MoebiusGame

    spec = GAMES[name]
    return MoebiusGame.random(spec["n"], spec["order"], spec["n_terms"], seed=spec["seed"])


def run_task(task):
    """All methods on one (game, budget, seed); returns result rows."""
    from surrogateshap import estimate
    from surrogateshap.estimators import PAPER_DEFAULT

    name, budget, seed = task
    game = _game(name)
    exact = game.shapley_values()
    rows = []

    def record(method, values, seconds):
        err = float(np.linalg.norm(values - exact) / np.linalg.norm(exact))
        rho = float(spearmanr(values, exact).statistic)
        rows.append(dict(game=name, budget=budget, seed=seed, method=method, error=err, spearman=rho,
                         seconds=round(seconds, 2)))

    for method, label, options in [
        ("permutation", "permutation", {}),
        ("kernelshap", "kernelshap", {"n_bootstrap": 0}),
        ("kernelshap", "leverageshap", {"sampling": "leverage", "n_bootstrap": 0}),
    ]:
        start = time.perf_counter()
        att = estimate(game, method, budget=budget, seed=seed, **options)
        record(label, att.values, time.perf_counter() - start)
    # one fit gives both the unadjusted and the MSR-adjusted values
    for label, options in [("fixed", {"params": PAPER_DEFAULT}), ("cv", {})]:
        start = time.perf_counter()
        att = estimate(game, "surrogateshap", budget=budget, seed=seed, n_bootstrap=0, adjust="msr", **options)
        seconds = time.perf_counter() - start
        record(f"surrogateshap_{label}", np.array(att.diagnostics["values_unadjusted"]), seconds)
        record(f"surrogateshap_{label}_msr", att.values, seconds)
    return rows


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """Median error and Spearman over seeds, and each method's error ratio to the reference."""
    med = frame.groupby(["game", "budget", "method"])[["error", "spearman", "seconds"]].median().reset_index()
    ref = med[med.method == REFERENCE].set_index(["game", "budget"])["error"]
    med["ratio_to_surrogateshap"] = med.apply(lambda r: r.error / ref.get((r.game, r.budget), np.nan), axis=1)
    return med


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/results/estimator_accuracy.csv")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budgets", type=int, nargs="*", default=list(BUDGETS))
    parser.add_argument("--games", nargs="*", default=list(GAMES))
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    out = Path(args.out)
    done = set()
    if out.exists():
        old = pd.read_csv(out)
        done = set(zip(old.game, old.budget, old.seed))
    tasks = [(g, b, s) for g in args.games for b in args.budgets for s in range(args.seeds) if (g, b, s) not in done]
    out.parent.mkdir(parents=True, exist_ok=True)
    new_file = not out.exists()
    with open(out, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        if new_file:
            writer.writeheader()
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            for rows in pool.map(run_task, tasks):
                writer.writerows(rows)
                handle.flush()
                print(f"done {rows[0]['game']} budget={rows[0]['budget']} seed={rows[0]['seed']}", flush=True)
    summary = summarise(pd.read_csv(out))
    pd.set_option("display.width", 200)
    for game, part in summary.groupby("game"):
        print(f"\n{game}: median normalised L2 error (ratio to {REFERENCE})")
        err = part.pivot(index="budget", columns="method", values="error")
        ratio = part.pivot(index="budget", columns="method", values="ratio_to_surrogateshap")
        print(err.round(4).astype(str).add(" (").add(ratio.round(2).astype(str)).add(")").to_string())
        print(f"{game}: median Spearman with exact values")
        print(part.pivot(index="budget", columns="method", values="spearman").round(3).to_string())


if __name__ == "__main__":
    main()
