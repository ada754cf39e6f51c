"""shapiq's Shapley-value approximators on tabulated games: the peers' half of ``estimator_peers.py``.

This script runs in a separate environment that holds shapiq (and not necessarily surrogateshap):
shapiq 1.4.1 is the newest release for the project's Python 3.11, its newest approximators
(LeverageSHAP, RegressionMSR, ProxySHAP, OddSHAP, PolySHAP) need shapiq 1.8 on Python 3.12. Both
environments are made by ``make peers`` (``.venv-peers`` and ``.venv-peers312``). It imports only
numpy, scipy and shapiq, so the games come as tables: ``<name>.npz`` with ``values`` (the game's
value of every one of the 2**n coalitions, player ``i`` in bit ``i`` of the row index) and
``exact`` (the exact Shapley values), written by ``estimator_peers.py``.

    .venv-peers/bin/python benchmarks/peers_shapiq.py soum --tables out/peer_tables
    .venv-peers312/bin/python benchmarks/peers_shapiq.py run --tables out/peer_tables --out rows.csv

``soum`` tabulates shapiq's own synthetic games (sums of unanimity games, ``shapiq_games.synthetic.SOUM``)
with shapiq's exact Shapley values. ``run`` gives every approximator the same budget and seeds as ours;
each row records the normalised L2 error, the Spearman correlation, the CPU seconds of the estimate and
the number of distinct coalitions the approximator evaluated. Rows are appended as they finish, so an
interrupted run resumes.
"""

from __future__ import annotations

import argparse
import csv
import inspect
import os
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread per estimate, as ours
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import shapiq  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

#: shapiq's synthetic games: (players, unanimity games, smallest and largest interaction, seed)
SOUM_GAMES = {"soum15_order3": (15, 60, 1, 3, 7), "soum18_order6": (18, 120, 1, 6, 8)}
#: approximators tried, with the settings given beyond ``n`` and ``random_state`` (only those the
#: installed version has run); otherwise each method's own defaults
APPROXIMATORS = {
    "KernelSHAP": {"pairing_trick": True},
    "LeverageSHAP": {},
    "RegressionMSR": {"index": "SV"},
    "ProxySHAP": {"index": "SV", "max_order": 1},
    "OddSHAP": {},
    "PolySHAP": {},
    "ProxySPEX": {"index": "SV", "max_order": 1, "hpo": False},  # 1.8's default search: ~1 min per estimate
    "SVARM": {},
    "PermutationSamplingSV": {},
}
FIELDS = ["game", "budget", "seed", "method", "error", "spearman", "seconds", "distinct"]


def version() -> str:
    from importlib.metadata import version as installed

    return installed("shapiq")


class TabulatedGame:
    """A table of all 2**n coalition values as a shapiq-style callable; counts distinct coalitions asked."""

    def __init__(self, values: np.ndarray, n: int) -> None:
        self.values, self.n_players = values, n
        self.bits = 1 << np.arange(n, dtype=np.int64)
        self.seen: set[int] = set()

    def __call__(self, coalitions: np.ndarray) -> np.ndarray:
        coalitions = np.asarray(coalitions, dtype=bool)
        index = np.atleast_2d(coalitions).astype(np.int64) @ self.bits
        self.seen.update(index.tolist())
        return self.values[index]


def tabulate_soum(tables: Path) -> None:
    from shapiq_games.synthetic import SOUM

    tables.mkdir(parents=True, exist_ok=True)
    for name, (n, basis, low, high, seed) in SOUM_GAMES.items():
        path = tables / f"{name}.npz"
        if path.exists():
            continue
        game = SOUM(n, basis, min_interaction_size=low, max_interaction_size=high, random_state=seed)
        rows = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(bool)
        values = np.concatenate([game.value_function(chunk) for chunk in np.array_split(rows, 64)])
        exact = shapiq.ExactComputer(n_players=n, game=game)("SV", 1).get_n_order_values(1)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, values=values, exact=np.asarray(exact, dtype=np.float64), source=f"shapiq {version()} SOUM")
        tmp.replace(path)
        print(f"wrote {path}")


def approximators(n: int, seed: int) -> dict[str, object]:
    """Every approximator of :data:`APPROXIMATORS` the installed shapiq has, set up for ``n`` players."""
    made = {}
    for name, settings in APPROXIMATORS.items():
        cls = getattr(shapiq.approximator, name, None)
        if cls is None:
            continue
        params = inspect.signature(cls.__init__).parameters
        made[name] = cls(n=n, random_state=seed, **{k: v for k, v in settings.items() if k in params})
    return made


def run(tables: Path, out: Path, budgets: list[int], seeds: int, games: list[str] | None) -> None:
    label = f"shapiq{version()}"
    done = set()
    if out.exists():
        with out.open() as fh:
            done = {(r["game"], int(r["budget"]), int(r["seed"]), r["method"]) for r in csv.DictReader(fh)}
    out.parent.mkdir(parents=True, exist_ok=True)
    new = not out.exists()
    with out.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        for path in sorted(tables.glob("*.npz")):
            if games and path.stem not in games:
                continue
            table = np.load(path)
            values, exact = table["values"], table["exact"]
            n = len(exact)
            for budget in budgets:
                for seed in range(seeds):
                    for name, approximator in approximators(n, seed).items():
                        method = f"{label}_{name}"
                        if (path.stem, budget, seed, method) in done:
                            continue
                        game = TabulatedGame(values, n)
                        tic = time.process_time()
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            phi = np.asarray(approximator.approximate(budget, game).get_n_order_values(1))
                        seconds = time.process_time() - tic
                        writer.writerow(dict(
                            game=path.stem, budget=budget, seed=seed, method=method,
                            error=float(np.linalg.norm(phi - exact) / np.linalg.norm(exact)),
                            spearman=float(spearmanr(phi, exact).statistic), seconds=round(seconds, 4),
                            distinct=len(game.seen)))
                        fh.flush()
            print(f"{label}: {path.stem} done", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    soum = sub.add_parser("soum", help="tabulate shapiq's SOUM games")
    soum.add_argument("--tables", type=Path, required=True)
    go = sub.add_parser("run", help="run the approximators on every table")
    go.add_argument("--tables", type=Path, required=True)
    go.add_argument("--out", type=Path, required=True)
    go.add_argument("--budgets", type=int, nargs="+", default=[64, 128, 256, 512, 1024])
    go.add_argument("--seeds", type=int, default=5)
    go.add_argument("--games", nargs="*", default=None)
    args = parser.parse_args()
    if args.command == "soum":
        tabulate_soum(args.tables)
    else:
        run(args.tables, args.out, args.budgets, args.seeds, args.games)


if __name__ == "__main__":
    main()
