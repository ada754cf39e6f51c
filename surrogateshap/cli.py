"""The ``surrogateshap`` command line.

``surrogateshap estimate --values FILE.csv --out DIR`` attributes a game whose coalition
values were computed elsewhere (retraining runs, an external evaluation pipeline): the CSV
has one 0/1 column per contributor and a ``value`` column, one row per coalition, the empty
and the full coalition included. The generation-based subcommands (``demo``,
``attribute``, ``fit``, ``predict``) arrive with the model-side issues.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="surrogateshap",
        description="Contributor attribution for conditional image generators: proxy games, "
        "XGBoost surrogates and exact TreeSHAP.",
    )
    parser.add_argument("--version", action="version", version=f"surrogateshap {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    est = sub.add_parser(
        "estimate",
        help="Shapley values from a CSV of already evaluated coalitions.",
        description="Fit the SurrogateSHAP surrogate on coalitions evaluated elsewhere and write "
        "attribution.json and attribution.csv.",
    )
    est.add_argument("--values", required=True, type=Path,
                     help="CSV: one 0/1 column per contributor plus a 'value' column; one row per coalition, "
                     "the empty and the full coalition included.")
    est.add_argument("--out", required=True, type=Path, help="output folder (created if missing).")
    est.add_argument("--seed", type=int, default=0, help="seed of cross-validation folds and XGBoost (default 0).")
    est.add_argument("--cv", type=int, default=5, help="folds for choosing XGBoost parameters (default 5).")
    est.add_argument("--bootstrap", type=int, default=20,
                     help="bootstrap refits for the standard errors; 0 turns them off (default 20).")
    est.add_argument("--adjust", choices=["none", "msr"], default="none",
                     help="regression adjustment of the surrogate's values (default none).")
    return parser


def _estimate_from_csv(args: argparse.Namespace) -> None:
    import numpy as np
    import pandas as pd

    from .estimators.surrogate_shap import surrogate_shap_from_values
    from .io import atomic_write_text

    if not args.values.is_file():
        raise SystemExit(f"error: {args.values} does not exist; pass the CSV of coalition values with --values.")
    frame = pd.read_csv(args.values)
    if "value" not in frame.columns:
        raise SystemExit(f"error: {args.values} has no 'value' column; add one with each coalition's utility.")
    players = [c for c in frame.columns if c != "value"]
    masks = frame[players].to_numpy()
    if not np.isin(masks, (0, 1)).all():
        raise SystemExit(f"error: the contributor columns of {args.values} must hold only 0 and 1.")
    att = surrogate_shap_from_values(
        masks.astype(bool), frame["value"].to_numpy(float), seed=args.seed, cv=args.cv,
        n_bootstrap=args.bootstrap, adjust=None if args.adjust == "none" else args.adjust,
    )
    att.players = players
    args.out.mkdir(parents=True, exist_ok=True)
    att.to_json(args.out / "attribution.json")
    atomic_write_text(args.out / "attribution.csv", att.to_frame().to_csv())
    print(att.to_frame().sort_values("rank").to_string())
    print(f"surrogate cross-validated R^2 {att.diagnostics['cv_r2']:.3f}; wrote {args.out / 'attribution.json'}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``surrogateshap`` console script."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        if args.command == "estimate":
            _estimate_from_csv(args)
    except ValueError as err:  # library errors already name the problem and the fix
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
