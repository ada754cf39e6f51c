"""The ``surrogateshap`` command line.

- ``surrogateshap demo --out DIR [--setting artists]``: an embedded setting, offline on a CPU (shipped models):
  the class-conditional digits DDPM, or the artists' text-to-image model (Stable Diffusion layout + LoRA).
- ``surrogateshap attribute --config FILE --out DIR``: any configured setting (``configs/*.yaml``).
- ``surrogateshap estimate --values FILE.csv --out DIR``: attribute coalitions whose values were
  computed elsewhere (retraining runs, an external pipeline): one 0/1 column per contributor and a
  ``value`` column, one row per coalition, the empty and the full coalition included.
- ``surrogateshap report --from DIR``: rebuild a finished run's ``attribution.csv``, plots and ``report.md``
  from its ``attribution.json`` (after editing a contributor's role, or to re-plot).
- ``surrogateshap retrain --coalitions FILE.csv --out DIR [--setting artists]``: the retraining game (ground
  truth for validating the proxy): retrain the digits DDPM (or the artists' LoRA) on each coalition and score it.
- ``surrogateshap fit|predict --config FILE``: LightningCLI over the project's modules (train the
  digits DDPM or feature network; generate a bank in a predict loop).

Errors in what the user gave (a missing file, a bad config key, an empty contributor) print one
line naming the problem and the fix, and exit with status 2, before any work starts and with nothing
written to ``--out``. SIGTERM and Ctrl-C stop a run with one line saying what is kept and how to
resume (exit status 128 + the signal: 143, 130); the machine refusing a write is one line, status 1.
"""

from __future__ import annotations

import argparse
import errno
import sys
from pathlib import Path

from . import __version__

LIGHTNING_COMMANDS = ("fit", "predict", "validate", "test")
PATH_OPTIONS = ("--out", "--from", "--values", "--config", "--coalitions")
# bitsandbytes (not a dependency, but often installed beside peft, which imports it) warns on every import on
# CPUs with AVX512-BF16 that an optional 4-bit kernel package is missing; no command here uses 4-bit layers
_BITSANDBYTES_NOTICE = ("bitsandbytes.backends.cpu.ops", "gemm_4bit_forward")


def _not_bitsandbytes_notice(record: object) -> bool:
    return _BITSANDBYTES_NOTICE[1] not in record.getMessage()  # type: ignore[attr-defined]


def _hub_offline() -> None:
    """Every model comes from a local path: keep the Hugging Face hub client offline (``HF_HUB_OFFLINE=1``, read
    when huggingface_hub is first imported) unless the user set the variable, so that no library fetches at
    run time (bitsandbytes asks the hub for a CPU kernel on import when the ``kernels`` package is present)."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _quiet_library_notices() -> None:
    """Drop the one known library notice that says nothing about the user's run (see _BITSANDBYTES_NOTICE)."""
    import logging

    logger = logging.getLogger(_BITSANDBYTES_NOTICE[0])
    if _not_bitsandbytes_notice not in logger.filters:
        logger.addFilter(_not_bitsandbytes_notice)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="surrogateshap",
        description="Contributor attribution for conditional image generators: proxy games, "
        "XGBoost surrogates and exact TreeSHAP.",
        epilog="`surrogateshap fit --help` and `surrogateshap predict --help` show the LightningCLI options.",
    )
    parser.add_argument("--version", action="version", version=f"surrogateshap {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("fit", help="train a LightningModule from a YAML config (LightningCLI), e.g. the digits DDPM.",
                   add_help=False)
    sub.add_parser("predict", help="run a predict loop from a YAML config (LightningCLI), e.g. bank generation.",
                   add_help=False)

    demo = sub.add_parser(
        "demo",
        help="an embedded setting (planted contributors, shipped models, all outputs): digits or artists.",
        description="digits (default): generate the digits bank with the shipped class-conditional DDPM (and a "
        "bank of the untrained network for v_empty), attribute FID, Inception Score, quality, diversity and marker "
        "rate. artists: the shipped text-to-image model (Stable Diffusion layout + LoRA) prompted with 40 artists' "
        "captions (the base model for v_empty), attributing quality, FID, cluster diversity and a spurious "
        "correlation. Both write attribution.json/.csv, plots, report.md and a W&B run; rerunning resumes "
        "generation.",
    )
    demo.add_argument("--out", required=True, type=Path, help="output folder (created if missing).")
    demo.add_argument("--setting", choices=["digits", "artists"], default="digits",
                      help="which embedded setting (default digits).")
    demo.add_argument("--config", type=Path, default=None,
                      help="a config of that setting with another planting (default: the shipped configs/digits.yaml "
                      "or configs/artists_sd.yaml); a digits planting the shipped DDPM was not trained on trains one "
                      "first, cached under OUT/models.")
    _add_common(demo)

    att = sub.add_parser(
        "attribute",
        help="attribute any configured setting (configs/*.yaml).",
        description="Generate the config's contributor bank (resuming), evaluate every utility's proxy game, "
        "estimate Shapley values and write attribution.json/.csv, plots, report.md and a W&B run.",
    )
    att.add_argument("--config", required=True, type=Path, help="YAML config (see configs/ for examples).")
    att.add_argument("--out", required=True, type=Path, help="output folder (created if missing).")
    _add_common(att)

    ret = sub.add_parser(
        "retrain",
        help="ground truth for validation: retrain the digits DDPM (or the artists' LoRA) on each coalition and "
        "score it.",
        description="For every coalition of a CSV (one 0/1 column per contributor, optional `coalition` name "
        "column) retrain on that coalition's data with the shipped recipe and record every utility in "
        "OUT/retrain.csv. digits: the class-conditional DDPM from scratch, generated with the coalition's labels "
        "and with the null label only. artists: the LoRA from the base model (the recipe's steps per picture), "
        "prompted with the coalition's captions. The empty coalition is the config's base model. A rerun skips "
        "finished coalitions.",
    )
    ret.add_argument("--coalitions", required=True, type=Path, help="CSV of coalitions to retrain.")
    ret.add_argument("--out", required=True, type=Path, help="output folder (created if missing).")
    ret.add_argument("--setting", choices=["digits", "artists"], default="digits",
                     help="which embedded setting (default digits).")
    ret.add_argument("--config", type=Path, default=None,
                     help="a config of that setting (default: the shipped configs/digits.yaml or "
                     "configs/artists_sd.yaml).")
    ret.add_argument("--max-steps", type=int, default=None,
                     help="training steps per retrain (default: the recipe's, as for the shipped model; artists: "
                     "its steps per picture).")
    ret.add_argument("--train-seed", type=int, default=None,
                     help="training seed (default: the recipe's, as for the shipped model); use another --out "
                     "folder per seed.")
    ret.add_argument("--workers", type=int, default=1,
                     help="coalitions retrained at once, one process each with an equal share of the CPU threads "
                     "(default 1).")
    ret.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config value (repeatable).")
    ret.add_argument("--no-progress", action="store_true", help="hide progress bars.")

    est = sub.add_parser(
        "estimate",
        help="Shapley values from a CSV of already evaluated coalitions.",
        description="Fit the SurrogateSHAP surrogate on coalitions evaluated elsewhere and write "
        "attribution.json, attribution.csv, plots and report.md.",
    )
    est.add_argument("--values", required=True, type=Path,
                     help="CSV: one 0/1 column per contributor plus a 'value' column; one row per coalition, "
                     "the empty and the full coalition included.")
    est.add_argument("--out", required=True, type=Path, help="output folder (created if missing).")
    est.add_argument("--seed", type=int, default=0, help="seed of cross-validation folds and XGBoost (default 0).")
    est.add_argument("--cv", type=int, default=None,
                     help="folds of the cross-validation that chooses the surrogate (default: SurrogateSHAP's, 5).")
    est.add_argument("--std", choices=["folds", "bootstrap", "none"], default=None,
                     help="standard errors: from the cross-validation's fold models (folds, the default), from "
                     "--bootstrap refits, or none.")
    est.add_argument("--bootstrap", type=int, default=None,
                     help="refits for --std bootstrap (default: SurrogateSHAP's, 20).")
    est.add_argument("--adjust", choices=["auto", "shrunk", "msr", "none"], default="auto",
                     help="regression adjustment of the surrogate's values (default auto: shrunk, the out-of-fold "
                     "MSR correction shrunk to its noise).")
    est.add_argument("--lower-is-better", action="store_true",
                     help="the value is a cost (e.g. FID): record higher_is_better = false.")

    rep = sub.add_parser(
        "report",
        help="rebuild attribution.csv, plots and report.md of a finished run from its attribution.json.",
        description="Read DIR/attribution.json (validated) and write attribution.csv, every plot, report.md and "
        "attribution.json again, from the document alone: after editing a contributor's role in it, or to re-plot.",
    )
    rep.add_argument("--from", dest="run_dir", required=True, type=Path, help="the folder of a finished run.")
    rep.add_argument("--out", type=Path, default=None, help="write the files here instead of into --from.")
    return parser


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set estimator.budget=128 (repeatable; YAML values).")
    parser.add_argument("--no-wandb", action="store_true", help="do not log a W&B run (outputs are still written).")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars.")


def _run_setting(args: argparse.Namespace) -> None:
    if args.command == "demo":
        if args.setting == "artists":
            from .examples.artists.demo import run_demo
        else:
            from .examples.digits.demo import run_demo

        run = run_demo(args.out, args.config, args.overrides, progress=not args.no_progress,
                       use_wandb=False if args.no_wandb else None)
    else:
        from .config import load_config
        from .pipeline import attribute_sections, run_attribution

        config = load_config(args.config, args.overrides, sections=attribute_sections())
        run = run_attribution(config, args.out, progress=not args.no_progress,
                              use_wandb=False if args.no_wandb else None)
    _print_summary(run.document, args.out)
    if run.wandb_message:
        print(run.wandb_message)


def _retrain(args: argparse.Namespace) -> None:
    from .config import load_config
    from .games.retraining import RESULTS_FILE, run_retraining

    if args.setting == "artists":
        from .examples.artists.demo import artists_sections as sections
        from .examples.artists.demo import default_config_path
        from .examples.artists.retrain import ARTISTS_RETRAINING as retraining
    else:
        from .examples.digits.demo import default_config_path
        from .examples.digits.demo import digits_sections as sections
        from .examples.digits.retrain import DIGITS_RETRAINING as retraining

    config = load_config(args.config or default_config_path(), args.overrides, sections=sections())
    frame = run_retraining(config, args.coalitions, args.out, retraining, max_steps=args.max_steps,
                           train_seed=args.train_seed, progress=not args.no_progress, workers=args.workers)
    print(f"{len(frame)} coalitions scored; wrote {args.out / RESULTS_FILE}")


def _print_summary(document: dict, out: Path) -> None:
    import io

    import pandas as pd

    from .report import attribution_csv

    frame = pd.read_csv(io.StringIO(attribution_csv(document)))
    for name, part in frame.groupby("utility", sort=False):
        best = "higher" if bool(part["higher_is_better"].iloc[0]) else "lower"
        print(f"\n{name} ({best} is better): contributors by value")
        print(part.sort_values("rank")[["contributor", "role", "value", "std", "rank"]].to_string(index=False))
    print(f"\nwrote {out / 'attribution.json'}, attribution.csv, plots and {out / 'report.md'}")


def _estimate_from_csv(args: argparse.Namespace) -> None:
    from .attribution import AttributionResult, EstimatorSettings, UtilityResult, contributor_entries
    from .coalitions import read_coalition_values
    from .io import check_output_folder, output_lock

    out = check_output_folder(args.out)
    written = {"attribution.json", "attribution.csv", "report.md"}
    if args.values.resolve().parent == out.resolve() and (args.values.name in written or args.values.suffix == ".png"):
        raise ValueError(f"--values {args.values} is in --out {out} under a name the run writes; it would be "
                         "overwritten: give another --out folder.")
    table = read_coalition_values(args.values)  # every defect of the file is refused here, before the fit
    for name, rows in (("empty", ~table.masks.any(axis=1)), ("full", table.masks.all(axis=1))):
        if not rows.any():
            raise ValueError(f"coalition values file {args.values} has no row for the {name} coalition (every "
                             f"contributor {'0' if name == 'empty' else '1'}); add it: it fixes v_{name}.")
    inner = int((table.masks.any(axis=1) & ~table.masks.all(axis=1)).sum())
    if inner < 2:
        single = " (a single contributor's value is v_full - v_empty)" if len(table.players) == 1 else ""
        raise ValueError(
            f"coalition values file {args.values} has {inner} coalition(s) besides the empty and the full one; the "
            f"surrogate's cross-validation needs at least 2{single}: add evaluated coalitions (10 per contributor "
            "or more is typical)."
        )
    if args.cv is not None and args.cv < 2:
        raise ValueError(f"--cv {args.cv}: the cross-validation needs at least 2 folds (they choose the surrogate "
                         "and give the standard errors); give --cv 2 or more.")
    if args.bootstrap is not None and args.std != "bootstrap":
        raise ValueError(f"--bootstrap {args.bootstrap} sets the refits of --std bootstrap, but the standard errors "
                         f"are --std {args.std or 'folds'}; add --std bootstrap or drop --bootstrap.")
    given = {"cv": args.cv, "std": args.std, "n_bootstrap": args.bootstrap}
    options = {key: (None if value == "none" else value) for key, value in given.items() if value is not None}
    settings = EstimatorSettings(budget=len(table.names), seed=args.seed, options={
        **options, "adjust": None if args.adjust == "none" else args.adjust})
    with output_lock(out):
        att = settings.estimator().estimate_from_values(table.masks, table.values)
        att.players = table.players
        result = UtilityResult(name="value", attribution=att, higher_is_better=not args.lower_is_better)
        contributors = contributor_entries(table.players, dict.fromkeys(table.players, 1))
        outcome = AttributionResult.from_results([result], contributors, settings)
        outcome.write(out)
    _print_summary(outcome.document, out)


def _report(args: argparse.Namespace) -> None:
    from .io import check_output_folder, output_lock
    from .report import rebuild_outputs

    if not (args.run_dir / "attribution.json").is_file():
        raise FileNotFoundError(
            f"{args.run_dir} has no attribution.json; give --from the output folder of a finished run."
        )
    out = check_output_folder(args.out or args.run_dir, "--out" if args.out else "--from")
    with output_lock(out, "--out" if args.out else "--from"):
        paths = rebuild_outputs(args.run_dir, args.out)
    print(f"rebuilt {len(paths)} files in {out} from {args.run_dir / 'attribution.json'}")


COMMANDS = {"estimate": _estimate_from_csv, "retrain": _retrain, "report": _report, "demo": _run_setting,
            "attribute": _run_setting}
# what a rerun keeps after an interruption, by command
_BANK_KEPT = "bank rows already written under {out}/bank are kept: rerun the same command to resume."
_RESUME = {
    "demo": _BANK_KEPT,
    "attribute": _BANK_KEPT,
    "retrain": "finished coalitions in {out}/retrain.csv are kept: rerun the same command to resume.",
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``surrogateshap`` console script."""
    from_shell = argv is None
    _hub_offline()
    _quiet_library_notices()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in LIGHTNING_COMMANDS:
        from .lightning_cli import run_lightning_cli

        # from the shell LightningCLI reads sys.argv itself (it warns when given both)
        run_lightning_cli(None if from_shell else argv)
        return 0
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from .config import ConfigError
    from .interrupts import RunInterrupted, stop_on_signals

    try:
        for option in PATH_OPTIONS:  # argparse's Path turns "" into "." (the working folder)
            if option in argv and argv.index(option) + 1 < len(argv) and not argv[argv.index(option) + 1].strip():
                raise ValueError(f"{option} is empty; give a path.")
        with stop_on_signals():
            COMMANDS[args.command](args)
    except RunInterrupted as err:
        out = getattr(args, "out", None) or getattr(args, "run_dir", "")
        kept = _RESUME.get(args.command, "files already written are complete: rerun the same command.")
        print(f"error: {err}; {kept.format(out=out)}", file=sys.stderr)
        return 128 + err.signum
    except (ValueError, FileNotFoundError, ConfigError, KeyError) as err:
        # library errors already name the problem and the fix: one line, no traceback
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {message}", file=sys.stderr)
        return 2
    except OSError as err:  # the machine refused (disk full, permissions changed mid-run): one line too
        if err.errno == errno.ENAMETOOLONG:  # a path the user gave
            name = str(err.filename or "")
            shown = name if len(name) <= 80 else f"{name[:40]}...{name[-20:]} ({len(name)} characters)"
            print(f"error: {shown}: a name in this path is too long for the file system (at most 255 bytes per "
                  "name); give a shorter path.", file=sys.stderr)
            return 2
        print(f"error: {err.filename or ''}{': ' if err.filename else ''}{err.strerror or err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
