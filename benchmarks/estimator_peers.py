"""Our estimators beside shapiq's approximators, on games whose every coalition is tabulated.

Games: the four of ``estimator_accuracy.py`` (Moebius games of order 2 and 3, a proxy FID game),
shapiq's own synthetic games (SOUM, tabulated by ``peers_shapiq.py soum`` with shapiq's exact values)
and two tabular model-explanation games made here (a gradient-boosted classifier on scikit-learn's
bundled wine and breast-cancer data; a coalition's value is the predicted probability of the
explained row with the other features drawn from 32 background rows, the interventional game).
Each method gets the same budgets and seeds; shapiq runs in its own environments
(``make peers``), through ``peers_shapiq.py run``, on the same tables. Reported: median over seeds of
the normalised L2 error, each method's ratio to the best method of the cell, and CPU seconds per
estimate (one thread everywhere).

    python benchmarks/estimator_peers.py --peer-python .venv-peers/bin/python .venv-peers312/bin/python

Writes ``benchmarks/results/estimator_peers.csv`` (every row) and ``estimator_peers.md``; the tables and each
side's rows (an interrupted run resumes from them) stay in ``--tables``. Without ``--peer-python`` the peers'
rows already in ``--tables`` are merged as they are (after a change of ours: delete our changed methods' rows
from ``rows_ours.csv`` and rerun).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from estimator_accuracy import BUDGETS, game_and_values, game_table  # noqa: E402

from surrogateshap.coalitions import all_coalitions  # noqa: E402  (row k: player i iff bit i of k, as the tables)

OURS = {  # label -> (method, options)
    "surrogateshap_default": ("surrogateshap", {}),
    "surrogateshap_msr": ("surrogateshap", {"adjust": "msr"}),
    "kernelshap_paired": ("kernelshap", {"n_bootstrap": 0}),
    "leverageshap": ("kernelshap", {"sampling": "leverage", "n_bootstrap": 0}),
    "permutation": ("permutation", {}),
}
DEFAULT = "surrogateshap_default"
TABULAR = {"wine13_gbt": ("wine", 13), "cancer16_gbt": ("breast_cancer", 16)}
FIELDS = ["game", "budget", "seed", "method", "error", "spearman", "seconds", "distinct"]
#: an error below this means the method is exact on the game (up to rounding)
EXACT = 1e-8


def tabular_values(dataset: str, n: int, seed: int = 0) -> np.ndarray:
    """The interventional explanation game of one test row of a gradient-boosted classifier, every coalition."""
    from sklearn import datasets
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import train_test_split

    data = getattr(datasets, f"load_{dataset}")()
    x, y = data.data[:, :n], data.target
    x_train, x_test, y_train, _ = train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)
    model = HistGradientBoostingClassifier(max_iter=100, random_state=seed).fit(x_train, y_train)
    row = x_test[0]
    target = int(model.predict(row[None])[0])
    background = x_train[np.random.default_rng(seed).choice(len(x_train), 32, replace=False)]
    values = []
    for masks in np.array_split(all_coalitions(n), max(1, 2**n // 2048)):
        mixed = np.where(masks[:, None, :], row, background[None])  # (coalitions, background, features)
        proba = model.predict_proba(mixed.reshape(-1, n))[:, target]
        values.append(proba.reshape(len(masks), -1).mean(axis=1))
    return np.concatenate(values)


def tabulate(tables: Path) -> None:
    """Write every game's table (``values`` of all coalitions, ``exact`` Shapley values) not yet written."""
    from estimator_accuracy import GAMES

    from surrogateshap import estimate

    tables.mkdir(parents=True, exist_ok=True)
    for name in [*GAMES, *TABULAR]:
        path = tables / f"{name}.npz"
        if path.exists():
            continue
        if name in TABULAR:
            values = tabular_values(*TABULAR[name])
            n = TABULAR[name][1]
            game = table_game(values, n)
            exact = estimate(game, "exact", interactions=False).values
        else:
            game, exact = game_and_values(name)
            n = game.n_players
            values = np.concatenate([game(m) for m in np.array_split(all_coalitions(n), 64)])
            if n <= 16:  # the table reproduces the game's exact values (closed form or enumeration)
                again = estimate(table_game(values, n), "exact", interactions=False).values
                assert np.allclose(again, exact, rtol=1e-9, atol=1e-12), name
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, values=values, exact=exact)
        tmp.replace(path)
        print(f"wrote {path}", flush=True)


def table_game(values: np.ndarray, n: int):
    """A game that looks its coalitions up in a table of all ``2**n`` values."""
    from surrogateshap.games import FunctionGame

    bits = 1 << np.arange(n, dtype=np.int64)
    return FunctionGame(lambda masks: values[np.asarray(masks, bool).astype(np.int64) @ bits], n)


def run_ours(tables: Path, out: Path, budgets: list[int], seeds: int) -> None:
    from threadpoolctl import threadpool_limits

    from surrogateshap import estimate

    done = set()
    if out.exists():
        done = {(r["game"], int(r["budget"]), int(r["seed"]), r["method"]) for r in csv.DictReader(out.open())}
    new = not out.exists()
    with out.open("a", newline="") as fh, threadpool_limits(1):
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        for path in sorted(tables.glob("*.npz")):
            table = np.load(path)
            values, exact = table["values"], table["exact"]
            n = len(exact)
            for budget in budgets:
                for seed in range(seeds):
                    for label, (method, options) in OURS.items():
                        if (path.stem, budget, seed, label) in done:
                            continue
                        tic = time.process_time()
                        try:
                            att = estimate(table_game(values, n), method, budget=budget, seed=seed, **options)
                        except ValueError:  # e.g. permutation: budget too small for one pair of permutations
                            continue
                        seconds = time.process_time() - tic
                        writer.writerow(dict(
                            game=path.stem, budget=budget, seed=seed, method=label,
                            error=float(np.linalg.norm(att.values - exact) / np.linalg.norm(exact)),
                            spearman=float(spearmanr(att.values, exact).statistic), seconds=round(seconds, 4),
                            distinct=att.n_evaluations))
                        fh.flush()
            print(f"ours: {path.stem} done", flush=True)


def write_markdown(frame: pd.DataFrame, path: Path) -> None:
    med = frame.groupby(["game", "budget", "method"])[["error", "seconds", "distinct"]].median().reset_index()
    best = med.groupby(["game", "budget"])["error"].transform("min")
    med["ratio"] = med.error / best
    exact_somewhere = sorted(med[med.error < EXACT].game.unique())
    summary = med[~med.game.isin(exact_somewhere)]
    lines = ["# SurrogateSHAP and shapiq's approximators (written by benchmarks/estimator_peers.py)", "",
             f"Median over {frame.seed.nunique()} seeds of ||phi_hat - phi|| / ||phi||, in parentheses the ratio "
             "to the best method of the cell (**1.00** = best). Every game's coalitions are tabulated; every "
             "method gets the same budget of coalitions (distinct, empty and full included) and one thread.",
             "", f"The summaries leave out {', '.join(exact_somewhere) or 'no game'}: some method is exact there by "
             "construction (paired KernelSHAP and antithetic permutations on a game of order <= 2), which makes "
             "every ratio infinite; its table is below.", ""]
    default = summary[summary.method == DEFAULT].set_index(["game", "budget"])
    winners = summary.loc[summary.groupby(["game", "budget"])["error"].idxmin()].set_index(["game", "budget"])
    within = (default.ratio <= 1.10)
    lines += [f"## The default against the best method of each cell: within 10% in {int(within.sum())} of "
              f"{len(within)} cells", "", "| game | budget | default error | best method | best error | ratio |",
              "|---|---|---|---|---|---|"]
    for (game, budget), row in default.iterrows():
        win = winners.loc[(game, budget)]
        lines.append(f"| {game} | {budget} | {row.error:.4f} | {win.method} | {win.error:.4f} | {row.ratio:.2f} |")
    geo = summary.groupby(["budget", "method"]).error.apply(lambda e: float(np.exp(np.log(e).mean())))
    geo = geo.unstack("method")
    lines += ["", "## Geometric mean over games of the median error", "",
              "| budget | " + " | ".join(geo.columns) + " |", "|---" * (len(geo.columns) + 1) + "|"]
    for budget, row in geo.iterrows():
        top = row.min()
        lines.append(f"| {budget} | " + " | ".join(
            (f"**{v:.4f}**" if v == top else f"{v:.4f}") for v in row) + " |")
    cost = summary.pivot_table(index="budget", columns="method", values="seconds", aggfunc="median")
    lines += ["", "## CPU seconds per estimate (median over games and seeds)", "",
              "| budget | " + " | ".join(cost.columns) + " |", "|---" * (len(cost.columns) + 1) + "|"]
    for budget, row in cost.iterrows():
        lines.append(f"| {budget} | " + " | ".join(f"{v:.3f}" for v in row) + " |")
    for game, part in med.groupby("game"):
        ratio = part.pivot(index="budget", columns="method", values="ratio")

        def cell(budget, method, error, ratio=ratio):
            if np.isnan(error):
                return ""
            times = ratio.loc[budget, method]
            return f"**{error:.4f}**" if times == 1 else f"{error:.4f} ({times:.2f})"

        lines += game_table(game, part, cell)
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer-python", nargs="*", default=[], help="Python executables of shapiq environments")
    parser.add_argument("--tables", type=Path, default=Path("out/peer_tables"))
    parser.add_argument("--out", type=Path, default=HERE / "results" / "estimator_peers.csv")
    parser.add_argument("--budgets", type=int, nargs="+", default=list(BUDGETS))
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    tabulate(args.tables)
    peers = []
    for index, python in enumerate(args.peer_python):
        script = [python, str(HERE / "peers_shapiq.py")]
        if index == 0:
            subprocess.run([*script, "soum", "--tables", str(args.tables)], check=True)
        peer_out = args.tables / f"rows_peer{index}.csv"
        peers.append((peer_out, subprocess.Popen([  # beside ours: one thread each, two cores
            *script, "run", "--tables", str(args.tables), "--out", str(peer_out),
            "--budgets", *map(str, args.budgets), "--seeds", str(args.seeds)])))
    ours = args.tables / "rows_ours.csv"
    run_ours(args.tables, ours, args.budgets, args.seeds)
    for _, process in peers:
        if process.wait():
            raise SystemExit(f"a peer run failed (exit {process.returncode})")
    # without --peer-python the peers' rows of an earlier run are kept (rerunning ours after a change of ours)
    peer_rows = [p for p, _ in peers] if peers else sorted(args.tables.glob("rows_peer*.csv"))
    parts = [pd.read_csv(p) for p in [ours, *peer_rows] if p.exists()]
    frame = pd.concat(parts, ignore_index=True)
    frame.to_csv(args.out, index=False)
    write_markdown(frame, args.out.with_suffix(".md"))
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
