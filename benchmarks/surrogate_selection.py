"""How SurrogateSHAP should choose its surrogate: accuracy, cost and standard-error calibration of candidate defaults.

Each variant is a set of SurrogateSHAP options; every variant runs on the games of
``estimator_accuracy.py`` (exact values known) at budgets 64 to 1024 with the same seeds, and we
record the normalised L2 error, the CPU seconds of the estimator (game evaluations excluded) and
how often the exact value lies within the reported 2 std (the coverage of the standard errors).
The default that SurrogateSHAP ships is the variant this study picked; the table is committed
beside this script.

    python benchmarks/surrogate_selection.py --workers 2
    python benchmarks/surrogate_selection.py --variants paper_bootstrap --budgets 512 --seeds 2

Rows are appended to the CSV as they finish (a rerun skips what is there).
"""

from __future__ import annotations

import argparse
import csv
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from estimator_accuracy import BUDGETS, GAMES, game_and_values

from surrogateshap.estimators import PAPER_GRID as PAPER

#: name -> SurrogateSHAP options; "paper_bootstrap" is the default before this study, "default" the one after
VARIANTS: dict[str, dict] = {
    "default": {},
    "paper_bootstrap": {"param_grid": PAPER, "base": None, "paired": False, "std": "bootstrap", "n_bootstrap": 20},
    "es_d36_lr1_auto_paired_t300": {"param_grid": {"max_depth": [3, 6], "learning_rate": [0.1]}, "base": "auto",
                                    "paired": True, "max_trees": 300},
    "es_d36_lr3_auto_paired_t300": {"param_grid": {"max_depth": [3, 6], "learning_rate": [0.3]}, "base": "auto",
                                    "paired": True, "max_trees": 300},
    "es_d3_lr3_auto_paired_t300": {"param_grid": {"max_depth": [3], "learning_rate": [0.3]}, "base": "auto",
                                   "paired": True, "max_trees": 300},
    "es_d3_lr3_auto_t300": {"param_grid": {"max_depth": [3], "learning_rate": [0.3]}, "base": "auto",
                            "max_trees": 300},
    "es_d3_lr3_auto_paired_t300_cv3": {"param_grid": {"max_depth": [3], "learning_rate": [0.3]}, "base": "auto",
                                       "paired": True, "max_trees": 300, "cv": 3},
}
FIELDS = ["variant", "game", "budget", "seed", "error", "cpu_seconds", "coverage", "base", "n_estimators",
          "max_depth"]


def run_task(task: tuple[str, str, int, int]) -> dict:
    """One variant on one (game, budget, seed)."""
    from threadpoolctl import threadpool_limits

    from surrogateshap.estimators import SurrogateSHAP
    from surrogateshap.games import CachedGame

    variant, name, budget, seed = task
    game, exact = game_and_values(name)
    game = CachedGame(game)
    with threadpool_limits(limits=1):
        cpu = time.process_time()
        att = SurrogateSHAP(budget=budget, seed=seed, **VARIANTS[variant]).estimate(game)
        cpu = time.process_time() - cpu
    error = float(np.linalg.norm(att.values - exact) / np.linalg.norm(exact))
    coverage = float(np.mean(np.abs(att.values - exact) <= 2 * att.std)) if att.std is not None else np.nan
    best = att.diagnostics["best_params"]
    return dict(variant=variant, game=name, budget=budget, seed=seed, error=error,
                cpu_seconds=round(cpu - game.seconds, 3), coverage=coverage, base=att.diagnostics["base"],
                n_estimators=best.get("n_estimators"), max_depth=best.get("max_depth"))


def summarise(frame: pd.DataFrame) -> str:
    """Markdown: median error per game and budget, geometric mean over games, CPU seconds and coverage."""
    med = frame.groupby(["variant", "game", "budget"]).agg(error=("error", "median"),
                                                             cpu=("cpu_seconds", "median"),
                                                             coverage=("coverage", "mean")).reset_index()
    lines = ["# SurrogateSHAP selection study (written by benchmarks/surrogate_selection.py)", "",
             f"Games: {', '.join(sorted(frame.game.unique()))}; seeds per cell: "
             + ", ".join(f"{v} {n}" for v, n in frame.groupby("variant").seed.nunique().items()) + ". "
             "Error: median normalised L2 error; geo-mean: geometric mean of those medians over the games; "
             "CPU: median CPU seconds of one estimate (standard errors included, game evaluations excluded, "
             "one thread); coverage: share of players whose exact value lies within the reported 2 std.", ""]
    geo = med.groupby(["variant", "budget"]).error.apply(lambda e: float(np.exp(np.log(e).mean()))).unstack()
    cpu = med.groupby(["variant", "budget"]).cpu.median().unstack()
    cov = med.groupby(["variant", "budget"]).coverage.mean().unstack()
    budgets = list(geo.columns)
    lines += ["## Geometric-mean error over games / median CPU s / coverage", "",
              "| variant | " + " | ".join(str(b) for b in budgets) + " |", "|---" * (len(budgets) + 1) + "|"]
    for variant in geo.index:
        cells = [f"{geo.loc[variant, b]:.4f} / {cpu.loc[variant, b]:.2f} s / {cov.loc[variant, b]:.2f}"
                 for b in budgets]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    for game, part in med.groupby("game"):
        err = part.pivot(index="variant", columns="budget", values="error")
        lines += ["", f"## {game}: median error", "", "| variant | " + " | ".join(str(b) for b in err.columns)
                  + " |", "|---" * (len(err.columns) + 1) + "|"]
        lines += [f"| {v} | " + " | ".join(f"{err.loc[v, b]:.4f}" for b in err.columns) + " |" for v in err.index]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/results/surrogate_selection.csv")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--games", nargs="*", default=list(GAMES))
    parser.add_argument("--budgets", type=int, nargs="*", default=list(BUDGETS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    out = Path(args.out)
    done = set()
    if out.exists():
        old = pd.read_csv(out)
        done = set(zip(old.variant, old.game, old.budget, old.seed))
    tasks = [(v, g, b, s) for v in args.variants for g in args.games for b in args.budgets for s in range(args.seeds)
             if (v, g, b, s) not in done]
    new_file = not out.exists()
    with open(out, "a", newline="") as handle, ProcessPoolExecutor(max_workers=args.workers) as pool:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        if new_file:
            writer.writeheader()
        for row in pool.map(run_task, tasks):
            writer.writerow(row)
            handle.flush()
            print(f"{row['variant']} {row['game']} {row['budget']} seed={row['seed']}: error {row['error']:.4f}, "
                  f"{row['cpu_seconds']:.2f} CPU s", flush=True)
    report = summarise(pd.read_csv(out))
    out.with_suffix(".md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
