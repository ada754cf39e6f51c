"""Soft membership vs the paper's proxy against retraining, when contributors share a condition.

Setting: ``configs/digits_shared.yaml`` (the DDPM is conditioned on the digit; the twins
``digitK_a`` / ``digitK_b`` share label K, one twin of five digits is planted). The paper's proxy
(``membership.kind: shares``: keep a label's samples uniformly, weighted by the coalition's data
there) cannot tell twins apart; soft membership weighs each sample by the responsibility
classifier (``soft``; ``soft_temperature`` with its probabilities temperature-scaled). All are
compared with retraining from scratch. From the repository root::

    python benchmarks/validation_shared.py coalitions   # -> benchmarks/results/validation_shared_coalitions.csv
    python benchmarks/validation_shared.py proxy        # -> out/validation_shared/proxy_results.json
                                                        #    (--variants NAME ...: recompute only those)
    surrogateshap retrain --config configs/digits_shared.yaml \\
        --coalitions benchmarks/results/validation_shared_coalitions.csv --out out/validation_shared/retrain
    python benchmarks/validation_shared.py report       # -> benchmarks/results/validation_shared.md + CSVs

Coalitions: ``full``; ``one00..one23``, one twin of every digit (the case where the paper's proxy
is constant up to data sizes); ``dm00..dm23``, datamodel draws (alpha 0.5) = the digits demo's LDS
coalitions. The report gives, per utility and coalition family, the Spearman and Pearson
correlation of each proxy with the retrained utility, and the LDS of each proxy's SurrogateSHAP
attribution against the retrained datamodel coalitions; whatever is not yet retrained is marked
PARTIAL with the counts the numbers rest on.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from surrogateshap.evaluation import fidelity as correlations
from surrogateshap.io import atomic_write_text, jsonable

CONFIG = Path("configs/digits_shared.yaml")
OUT = Path("out/validation_shared")
RESULTS = Path("benchmarks/results")
COALITIONS = RESULTS / "validation_shared_coalitions.csv"
PROXY_RESULTS = OUT / "proxy_results.json"
RETRAIN = OUT / "retrain"
REPORT = RESULTS / "validation_shared.md"
# proxy variants: name -> config overrides (all on the same per-digit bank)
VARIANTS = {
    "soft": {"membership.kind": "soft"},
    "soft_temperature": {"membership.kind": "soft", "membership.classifier.calibration": "temperature"},
    "shares": {"membership.kind": "shares"},
}
FAMILIES = {"one": "one twin per digit", "dm": "datamodel (alpha 0.5)"}
N_EACH = 24


def one_twin_masks(n_digits: int, k: int, seed: int) -> np.ndarray:
    """``k`` distinct coalitions holding exactly one of the two twins of every digit."""
    rng = np.random.default_rng([seed, 7])
    picks: list[tuple[int, ...]] = []
    while len(picks) < k:
        pick = tuple(int(b) for b in rng.integers(0, 2, size=n_digits))
        if pick not in picks:
            picks.append(pick)
    masks = np.zeros((k, 2 * n_digits), dtype=bool)
    for row, pick in enumerate(picks):
        masks[row, 2 * np.arange(n_digits) + np.array(pick)] = True
    return masks


def run_coalitions(args: argparse.Namespace) -> Path:
    """Write ``full``, ``one00..`` and ``dm00..`` to the coalitions CSV."""
    from surrogateshap.attribution import holdout_coalitions
    from surrogateshap.examples.digits.planting import DigitsPlanting

    ids = DigitsPlanting(condition="digit").contributor_ids
    one = one_twin_masks(len(ids) // 2, N_EACH, args.seed)
    dm = holdout_coalitions(len(ids), N_EACH, args.seed)
    names = ["full"] + [f"one{i:02d}" for i in range(len(one))] + [f"dm{i:02d}" for i in range(len(dm))]
    masks = np.concatenate([np.ones((1, len(ids)), dtype=bool), one, dm])
    frame = pd.DataFrame(masks.astype(int), columns=ids)
    frame.insert(0, "coalition", names)
    atomic_write_text(args.coalitions, frame.to_csv(index=False))
    print(f"wrote {args.coalitions} ({len(frame)} coalitions)")
    return Path(args.coalitions)


def run_proxy(args: argparse.Namespace) -> dict[str, Any]:
    """Both proxies on the per-digit bank: SurrogateSHAP attributions and every coalition's value."""
    from surrogateshap.bank import ContributorBank
    from surrogateshap.coalitions import read_coalitions
    from surrogateshap.config import instantiate, load_config
    from surrogateshap.games.proxy import ProxyGame
    from surrogateshap.pipeline import run_attribution

    results = Path(args.results)
    # variants not asked for keep their earlier results
    document: dict[str, Any] = json.loads(results.read_text()) if results.is_file() else {"kinds": {}}
    document["config"] = str(args.config)
    for kind in args.variants:
        out = OUT / kind
        for other in VARIANTS:  # every variant plans the same per-unit bank: reuse a finished one
            for bank in ("bank", "base_bank"):
                if not (out / bank).exists() and (OUT / other / bank / "manifest.json").is_file():
                    shutil.copytree(OUT / other / bank, out / bank)
        config = load_config(args.config, VARIANTS[kind])
        run = run_attribution(config, out, progress=not args.no_progress, use_wandb=False)
        ids = list(run.membership.contributor_ids)
        names, masks = read_coalitions(args.coalitions, ids)
        utilities = instantiate(config["utilities"], "config.utilities")
        base = ContributorBank.load(out / "base_bank")
        values = {}
        for name, metric in utilities.items():
            game = ProxyGame(run.bank, copy.deepcopy(metric), base, membership=run.membership)
            values[name] = dict(zip(names, game(masks).tolist()))
        document["contributor_ids"] = ids
        document["kinds"][kind] = {
            "attributions": {r.name: r.attribution.values.tolist() for r in run.results},
            "higher_is_better": {r.name: r.higher_is_better for r in run.results},
            "proxy_values": values,
            "membership": run.document.get("membership"),
            "timings": run.timings,
        }
        print(f"{kind}: {len(names)} coalitions scored", flush=True)
    document["kinds"] = {k: document["kinds"][k] for k in VARIANTS if k in document["kinds"]}
    atomic_write_text(results, json.dumps(jsonable(document), indent=1) + "\n")
    print(f"wrote {results}")
    return document


def build_report(
    proxy: dict[str, Any], retrain: pd.DataFrame, n_planned: dict[str, int],
    repeats: Mapping[str, pd.DataFrame] | None = None,
) -> dict[str, Any]:
    """Fidelity and LDS tables (pandas) and the markdown report.

    ``repeats`` (label -> retrain rows with another training seed) are correlated with ``retrain``
    on the coalitions both hold, as rows of the fidelity table: the agreement of the ground truth
    with itself, which bounds what a proxy can reach.
    """
    ids = proxy["contributor_ids"]
    done = retrain.set_index("coalition")
    repeats = {label: frame.set_index("coalition") for label, frame in (repeats or {}).items()}
    utilities = list(next(iter(proxy["kinds"].values()))["proxy_values"])
    fidelity, lds_rows = [], []
    for utility in utilities:
        for prefix, family in [*FAMILIES.items(), ("", "both")]:
            names = [c for c in done.index if c != "full" and c.startswith(prefix) and utility in done.columns]
            truth = [float(done.loc[c, utility]) for c in names]
            for kind in proxy["kinds"]:
                values = proxy["kinds"][kind]["proxy_values"][utility]
                rho, r = correlations([values[c] for c in names], truth)
                planned = sum(n_planned.values()) if not prefix else n_planned.get(prefix, 0)
                fidelity.append({"utility": utility, "coalitions": family, "proxy": kind, "n": len(names),
                                 "planned": planned, "spearman": rho, "pearson": r})
            for label, again in repeats.items():
                common = [c for c in names if c in again.index and utility in again.columns]
                rho, r = correlations([float(again.loc[c, utility]) for c in common],
                                      [float(done.loc[c, utility]) for c in common])
                fidelity.append({"utility": utility, "coalitions": family, "proxy": label, "n": len(common),
                                 "planned": len(names), "spearman": rho, "pearson": r})
        names = [c for c in done.index if c.startswith("dm")]
        masks = done.loc[names, ids].to_numpy(dtype=float) if names else np.zeros((0, len(ids)))
        truth = done.loc[names, utility].to_numpy(dtype=float) if names else np.zeros(0)
        for kind in proxy["kinds"]:
            phi = np.asarray(proxy["kinds"][kind]["attributions"][utility], dtype=float)
            score = float(spearmanr(masks @ phi, truth).statistic) if len(names) >= 3 else float("nan")
            lds_rows.append({"utility": utility, "proxy": kind, "n": len(names), "planned": n_planned.get("dm", 0),
                             "lds": score})
    fid, lds = pd.DataFrame(fidelity), pd.DataFrame(lds_rows)
    partial = any(fid["n"] < fid["planned"])
    lines = ["# Soft membership vs the paper's proxy, against retraining (shared labels)", ""]
    if partial:
        lines += [f"**PARTIAL**: {len(done)} of {sum(n_planned.values()) + 1} coalitions retrained so far; "
                  "each row gives the coalitions it rests on (n of planned).", ""]
    lines += ["`soft` = responsibility-weighted proxy; `soft_temperature` = the same with the classifier's "
              "probabilities temperature-scaled (`membership.classifier.calibration: temperature`); "
              "`shares` = the paper's proxy on the same bank."
              + (" `retrain seed N` rows: the same coalitions retrained with another training seed, against the "
                 "first retrain (n of the coalitions retrained so far): the ceiling a proxy can reach." if repeats
                 else ""), "",
              "## Proxy fidelity (correlation with the retrained utility)", "",
              "| utility | coalitions | proxy | n / planned | Spearman | Pearson |", "|---|---|---|---|---|---|"]
    lines += [f"| {r.utility} | {r.coalitions} | {r.proxy} | {r.n} / {r.planned} | {r.spearman:.3f} | {r.pearson:.3f} |"
              for r in fid.itertuples()]
    lines += ["", "## LDS of the SurrogateSHAP attributions against the retrained datamodel coalitions", "",
              "| utility | proxy | n / planned | LDS |", "|---|---|---|---|"]
    lines += [f"| {r.utility} | {r.proxy} | {r.n} / {r.planned} | {r.lds:.3f} |" for r in lds.itertuples()]
    return {"fidelity": fid, "lds": lds, "markdown": "\n".join(lines) + "\n"}


def run_report(args: argparse.Namespace) -> dict[str, Any]:
    """Read the proxy results and the retrain CSV; write the markdown report and its CSVs."""
    if not Path(args.results).is_file():
        raise FileNotFoundError(f"{args.results} does not exist: run `python benchmarks/validation_shared.py proxy`.")
    proxy = json.loads(Path(args.results).read_text())
    planned = pd.read_csv(args.coalitions)["coalition"].astype(str)
    n_planned = {p: int(planned.str.startswith(p).sum()) for p in FAMILIES}
    from surrogateshap.games.retraining import RESULTS_FILE, SETTINGS_FILE

    frames = []
    for path in map(Path, args.retrain):
        csv = path / RESULTS_FILE if path.is_dir() else path
        if csv.is_file():
            frames.append(pd.read_csv(csv, dtype={"coalition": str}))
    retrain = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["coalition"])
    retrain = retrain.drop_duplicates("coalition")
    repeats = {}
    for folder in map(Path, args.repeat):
        settings = folder / SETTINGS_FILE
        seed = json.loads(settings.read_text()).get("train_seed") if settings.is_file() else None
        repeats[f"retrain seed {seed}" if seed is not None else f"retrain {folder.name}"] = pd.read_csv(
            folder / RESULTS_FILE, dtype={"coalition": str})
    report = build_report(proxy, retrain, n_planned, repeats)
    atomic_write_text(args.out, report["markdown"])
    for name in ("fidelity", "lds"):
        atomic_write_text(Path(args.out).with_name(f"{Path(args.out).stem}_{name}.csv"),
                          report[name].to_csv(index=False))
    print(report["markdown"])
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="stage", required=True)
    coal = sub.add_parser("coalitions", help="write the coalitions to retrain.")
    coal.add_argument("--coalitions", default=str(COALITIONS))
    coal.add_argument("--seed", type=int, default=0)
    proxy = sub.add_parser("proxy", help="both proxies: attributions and coalition values.")
    proxy.add_argument("--config", default=str(CONFIG))
    proxy.add_argument("--coalitions", default=str(COALITIONS))
    proxy.add_argument("--results", default=str(PROXY_RESULTS))
    proxy.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                       help="proxies to (re)compute; the others keep their results in --results.")
    proxy.add_argument("--no-progress", action="store_true")
    rep = sub.add_parser("report", help="compare both proxies with the retrains present.")
    rep.add_argument("--results", default=str(PROXY_RESULTS))
    rep.add_argument("--coalitions", default=str(COALITIONS))
    rep.add_argument("--retrain", nargs="+", default=[str(RETRAIN)],
                     help="retrain folders or retrain.csv files (runs split over several folders are merged).")
    rep.add_argument("--repeat", nargs="*", default=[],
                     help="retrain folders of the same coalitions with other training seeds (retrain --train-seed).")
    rep.add_argument("--out", default=str(REPORT))
    return parser


def main(argv: Sequence[str] | None = None) -> Any:
    """Command line entry point."""
    args = build_parser().parse_args(argv)
    return {"coalitions": run_coalitions, "proxy": run_proxy, "report": run_report}[args.stage](args)


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
