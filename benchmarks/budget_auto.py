"""``budget="auto"`` against the truth: where it stops, how large the error is there, and how well calibrated
the standard errors it stops on are.

On the games of ``benchmarks/estimator_accuracy.py`` (exact Shapley values known), for each seed the rounds
of ``SurrogateSHAP(budget="auto")`` are fitted one by one on the nested sample (the same prefixes the
estimator uses, up to ``--max-budget``), recording at every round the estimated relative error it stops on
(``relative_error``: ||std|| / ||phi_hat - mean||), the true one (||phi_hat - phi|| / ||phi - mean||), the
share of players whose exact value lies within 2 std, and the fit's seconds. The stopping rule is
deterministic given those rounds, so every tolerance is read off the same fits; one tolerance per game is
also run through ``estimate(budget="auto")`` itself and must stop at the same budget. The "oracle" budget
is the first round whose *true* error meets the tolerance: what a rule that knew the truth would spend.

    python benchmarks/budget_auto.py            # writes benchmarks/results/budget_auto.md
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from estimator_accuracy import GAMES, game_and_values

from surrogateshap.io import atomic_write_text

TOLERANCES = (0.2, 0.1, 0.05, 0.025)


def rounds_of(task: tuple[str, int, int]) -> list[dict]:
    """Every round of one (game, seed): budget, estimated and true error, 2-std coverage, seconds."""
    from threadpoolctl import threadpool_limits

    from surrogateshap import estimate
    from surrogateshap.coalitions import nested_coalitions
    from surrogateshap.estimators import SurrogateSHAP
    from surrogateshap.estimators.surrogate_shap import relative_error, round_prefixes

    name, seed, max_budget = task
    game, exact = game_and_values(name)
    spread = float(np.linalg.norm(exact - exact.mean()))
    estimator = SurrogateSHAP(seed=seed)
    sample = nested_coalitions(game.n_players, max_budget, estimator.sampler_for(game.n_players), seed=seed,
                               paired=estimator.paired)
    values = np.asarray(game(sample.masks), dtype=np.float64)
    rows = []
    with threadpool_limits(limits=1):
        for cut in round_prefixes(sample):
            start = time.process_time()
            att = estimator.estimate_from_values(sample.masks[:cut], values[:cut])
            rows.append(dict(game=name, seed=seed, budget=cut, estimated=relative_error(att.values, att.std),
                             true=float(np.linalg.norm(att.values - exact) / spread),
                             coverage=float(np.mean(np.abs(att.values - exact) <= 2 * att.std)),
                             cpu_seconds=time.process_time() - start))
        tolerance = 0.05
        auto = estimate(game, budget="auto", tolerance=tolerance, max_budget=max_budget, seed=seed)
    stop = next((r["budget"] for r in rows if r["estimated"] <= tolerance), rows[-1]["budget"])
    assert auto.diagnostics["budget_trace"][-1]["budget"] == stop, (name, seed, auto.diagnostics["budget_trace"])
    return rows


def stopping_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per game and tolerance: where the rule stops, the errors there, and the oracle's budget."""
    out = []
    for (name, seed), part in frame.groupby(["game", "seed"]):
        part = part.sort_values("budget")
        for tol in TOLERANCES:
            met = part[part.estimated <= tol]
            stop = met.iloc[0] if len(met) else part.iloc[-1]
            truly = part[part.true <= tol]
            out.append(dict(game=name, seed=seed, tolerance=tol, converged=bool(len(met)), budget=stop.budget,
                            estimated=stop.estimated, true=stop.true, within=stop.true <= tol,
                            oracle=truly.iloc[0].budget if len(truly) else np.nan,
                            cpu_seconds=part[part.budget <= stop.budget].cpu_seconds.sum()))
    table = pd.DataFrame(out)
    return table.groupby(["game", "tolerance"]).agg(
        stop_budget=("budget", "median"), oracle_budget=("oracle", "median"), converged=("converged", "mean"),
        estimated=("estimated", "median"), true=("true", "median"), true_max=("true", "max"),
        true_within=("within", "mean"), cpu_seconds=("cpu_seconds", "median"),
    ).reset_index()


def calibration_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per game and round: median estimated and true error, their ratio, and the 2-std coverage."""
    frame = frame.assign(ratio=frame.true / frame.estimated)
    return frame.groupby(["game", "budget"]).agg(
        estimated=("estimated", "median"), true=("true", "median"), true_over_estimated=("ratio", "median"),
        coverage_2std=("coverage", "mean"), cpu_seconds=("cpu_seconds", "median"),
    ).reset_index()


def markdown(stopping: pd.DataFrame, calibration: pd.DataFrame, seeds: int, max_budget: int) -> str:
    def table(frame: pd.DataFrame) -> list[str]:
        cols = list(frame.columns)
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for row in frame.itertuples(index=False):
            cells = [f"{v:.3g}" if isinstance(v, float) else str(v) for v in row]
            lines.append("| " + " | ".join(cells) + " |")
        return lines

    lines = [
        "# budget=\"auto\" (written by benchmarks/budget_auto.py)", "",
        f"SurrogateSHAP with its defaults, {seeds} seeds per game, rounds 128, 256, ... up to {max_budget} "
        "coalitions; errors relative to the spread of the exact values, ||phi_hat - phi|| / ||phi - mean(phi)||.",
        "", "## Where it stops", "",
        "Median over seeds: the budget the rule stops at, the oracle's (first round whose true error meets the "
        "tolerance), the share of seeds that converged before the maximum, the estimated and the true error at "
        "the stop (and the largest true error over seeds), the share of seeds whose true error at the stop is "
        "within the tolerance, and the CPU seconds of all rounds up to the stop.", "",
        *table(stopping), "",
        "## Calibration of the standard errors it stops on", "",
        "Per round: median estimated and true error, their ratio (below 1: the estimate is conservative), and the "
        "share of (player, seed) whose exact value lies within 2 std.", "",
        *table(calibration), "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/results/budget_auto.md")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--max-budget", type=int, default=2048)
    parser.add_argument("--games", nargs="*", default=list(GAMES))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    tasks = [(g, s, args.max_budget) for g in args.games for s in range(args.seeds)]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        frame = pd.DataFrame([row for rows in pool.map(rounds_of, tasks) for row in rows])
    stopping, calibration = stopping_table(frame), calibration_table(frame)
    text = markdown(stopping, calibration, args.seeds, args.max_budget)
    atomic_write_text(Path(args.out), text)
    print(text)


if __name__ == "__main__":
    main()
