"""Accuracy of every Shapley estimator against exact values, budget by budget.

Games of 12 to 20 players with exact Shapley values: Moebius games with second- and
third-order interactions (closed form), and a 16-contributor proxy FID game on synthetic
Gaussian features (a bank, ``ContributorFID``, v_empty from a far-away base bank; exact
values by enumerating all 2^16 coalitions). Paired KernelSHAP and antithetic permutation
sampling are exact on games of order <= 2, so the second-order game mainly checks that.
For each budget and seed, every method gets the same budget of
distinct coalitions; we report the normalised L2 error ||phi_hat - phi|| / ||phi|| and the
Spearman correlation with the exact values, median over seeds, and the ratio of each
method's error to ``surrogateshap_cv`` (the paper's grid, 5-fold CV, no adjustment: the default
before ``benchmarks/surrogate_selection.py``). Variants: ``surrogateshap_default`` (as it ships:
early-stopped CV choosing the base, paired sampling, fold standard errors),
``surrogateshap_fixed`` (the paper code's defaults), ``surrogateshap_cv``,
``surrogateshap_linear`` (the paper's grid, trees boosted from the Shapley-kernel linear fit,
paired sampling); the last three also with the MSR adjustment (``_msr``). Rows of the
``surrogateshap_cv``, ``_fixed`` and ``_linear`` groups were computed before the per-tree seeding of
XGBoost's row subsamples (``seed_per_iteration``) and are kept as they were.

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
    "proxy_fid16": dict(n=16, seed=104),
}
BUDGETS = (64, 128, 256, 512, 1024)
REFERENCE = "surrogateshap_cv"
FIELDS = ["game", "budget", "seed", "method", "error", "spearman", "seconds"]


_EXACT_CACHE: dict = {}


def proxy_fid_game(n: int, seed: int, dim: int = 8, per_contributor: int = 64):
    """A proxy FID game on synthetic features: contributors differ in mean shift and spread."""
    from surrogateshap.metrics import ContributorFID

    from surrogateshap import ContributorBank, ProxyGame

    rng = np.random.default_rng(seed)
    shift = rng.normal(scale=1.0, size=(n, dim))
    spread = rng.uniform(0.5, 2.5, size=n)
    feats = np.concatenate([shift[i] + spread[i] * rng.normal(size=(per_contributor, dim)) for i in range(n)])
    ids = np.repeat([f"c{i:02d}" for i in range(n)], per_contributor)
    sizes = {f"c{i:02d}": int(rng.integers(50, 500)) for i in range(n)}
    bank = ContributorBank({"x": feats.astype(np.float32)}, ids, sizes)
    base = ContributorBank({"x": (1.5 + rng.normal(size=(256, dim))).astype(np.float32)}, ["base"] * 256)
    reference = rng.normal(size=(4000, dim))
    return ProxyGame(bank, ContributorFID(feature="x", reference=reference), v_empty=base)


def game_and_values(name):
    """The game and its exact Shapley values."""
    from surrogateshap import estimate
    from surrogateshap.games import MoebiusGame

    spec = GAMES[name]
    if name.startswith("proxy_fid"):
        game = proxy_fid_game(spec["n"], spec["seed"])
        if name not in _EXACT_CACHE:
            _EXACT_CACHE[name] = estimate(game, "exact", interactions=False).values
        return game, _EXACT_CACHE[name]
    game = MoebiusGame.random(spec["n"], spec["order"], spec["n_terms"], seed=spec["seed"])
    return game, game.shapley_values()


GROUPS = {
    "baselines": ["permutation", "kernelshap", "leverageshap"],
    "default": ["surrogateshap_default"],
    "fixed": ["surrogateshap_fixed", "surrogateshap_fixed_msr"],
    "cv": ["surrogateshap_cv", "surrogateshap_cv_msr"],
    "cv_linear": ["surrogateshap_linear", "surrogateshap_linear_msr"],
}


def run_task(task):
    """One group of methods on one (game, budget, seed); returns result rows."""
    from surrogateshap import estimate
    from surrogateshap.estimators import PAPER_DEFAULT, PAPER_GRID

    name, budget, seed, group = task
    game, exact = game_and_values(name)
    rows = []

    def record(method, values, seconds):
        err = float(np.linalg.norm(values - exact) / np.linalg.norm(exact))
        rho = float(spearmanr(values, exact).statistic)
        rows.append(dict(game=name, budget=budget, seed=seed, method=method, error=err, spearman=rho,
                         seconds=round(seconds, 2)))

    if group == "baselines":
        for method, label, options in [
            ("permutation", "permutation", {}),
            ("kernelshap", "kernelshap", {"n_bootstrap": 0}),
            ("kernelshap", "leverageshap", {"sampling": "leverage", "n_bootstrap": 0}),
        ]:
            start = time.perf_counter()
            att = estimate(game, method, budget=budget, seed=seed, **options)
            record(label, att.values, time.perf_counter() - start)
        return rows
    if group == "default":  # SurrogateSHAP as it ships, standard errors included
        start = time.perf_counter()
        att = estimate(game, "surrogateshap", budget=budget, seed=seed)
        record("surrogateshap_default", att.values, time.perf_counter() - start)
        return rows
    # one fit gives both the unadjusted and the MSR-adjusted values
    options = {
        "fixed": {"params": PAPER_DEFAULT, "base": None, "paired": False},
        "cv": {"param_grid": PAPER_GRID, "base": None, "paired": False},
        "cv_linear": {"param_grid": PAPER_GRID, "base": "linear", "paired": True},
    }[group]
    label = GROUPS[group][0]
    start = time.perf_counter()
    att = estimate(game, "surrogateshap", budget=budget, seed=seed, n_bootstrap=0, adjust="msr", **options)
    seconds = time.perf_counter() - start
    record(label, np.array(att.diagnostics["values_unadjusted"]), seconds)
    record(f"{label}_msr", att.values, seconds)
    return rows


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """Median error and Spearman over seeds, and each method's error ratio to the reference."""
    med = frame.groupby(["game", "budget", "method"])[["error", "spearman", "seconds"]].median().reset_index()
    ref = med[med.method == REFERENCE].set_index(["game", "budget"])["error"]
    med["ratio_to_surrogateshap"] = med.apply(lambda r: r.error / ref.get((r.game, r.budget), np.nan), axis=1)
    return med


def write_markdown(summary: pd.DataFrame, path: Path) -> None:
    """One table per game: median error (ratio to the reference) per budget and method."""
    lines = [
        "# Estimator accuracy (written by benchmarks/estimator_accuracy.py)",
        "",
        f"Median over seeds of ||phi_hat - phi|| / ||phi||; in parentheses the ratio to {REFERENCE}.",
    ]
    for game, part in summary.groupby("game"):
        ratio = part.pivot(index="budget", columns="method", values="ratio_to_surrogateshap")
        lines += game_table(game, part, lambda budget, method, error, ratio=ratio:
                            f"{error:.4f} ({ratio.loc[budget, method]:.2f})")
    path.write_text("\n".join(lines) + "\n")


def game_table(game: str, part: pd.DataFrame, cell) -> list[str]:
    """Markdown lines of one game's table: a row per budget, a column per method, ``cell(budget, method, error)``."""
    err = part.pivot(index="budget", columns="method", values="error")
    lines = ["", f"## {game}", "", "| budget | " + " | ".join(err.columns) + " |",
             "|---" * (len(err.columns) + 1) + "|"]
    for budget in err.index:
        lines.append(f"| {budget} | " + " | ".join(cell(budget, m, err.loc[budget, m]) for m in err.columns) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/results/estimator_accuracy.csv")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budgets", type=int, nargs="*", default=list(BUDGETS))
    parser.add_argument("--games", nargs="*", default=list(GAMES))
    parser.add_argument("--groups", nargs="*", default=list(GROUPS), help=f"method groups: {list(GROUPS)}")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    out = Path(args.out)
    done = set()
    if out.exists():
        old = pd.read_csv(out)
        done = set(zip(old.game, old.budget, old.seed, old.method))
    tasks = [
        (g, b, s, group)
        for group in args.groups
        for g in args.games
        for b in args.budgets
        for s in range(args.seeds)
        if not all((g, b, s, m) in done for m in GROUPS[group])
    ]
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
                first = rows[0]
                print(f"done {first['game']} {first['budget']} seed={first['seed']} {first['method']}", flush=True)
    summary = summarise(pd.read_csv(out))
    write_markdown(summary, out.with_suffix(".md"))
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
