"""Why the digits marker_rate LDS does not grow with the budget: exact values, seeds and the LDS's own noise.

On the validation bank (``python benchmarks/validation.py proxy`` makes it) the marker_rate and
quality proxy games are cheap enough to enumerate: their exact Shapley values (2^20 coalitions)
give the LDS the estimators converge to. For each estimator and budget this script reports, over
``--seeds`` seeds, the median and range of the LDS against the retrained holdout coalitions
(``benchmarks/results/validation_retrain.csv``) and the median error against the exact values.

    python benchmarks/lds_noise.py        # -> benchmarks/results/lds_noise.md
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

RESULTS = Path(__file__).resolve().parent / "results"
PROXY = Path("out/validation/proxy")


def _lds(values: np.ndarray, masks: np.ndarray, observed: np.ndarray) -> float:
    return 100 * float(spearmanr(masks @ values, observed).statistic)


def main() -> None:
    from surrogateshap import ContributorBank, ProxyGame, estimate
    from surrogateshap.config import instantiate, load_config
    from surrogateshap.examples.digits.demo import default_config_path
    from surrogateshap.games import CachedGame

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--proxy-dir", type=Path, default=PROXY)
    parser.add_argument("--utilities", nargs="+", default=["marker_rate", "quality"])
    parser.add_argument("--budgets", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--out", type=Path, default=RESULTS / "lds_noise.md")
    args = parser.parse_args()
    config = load_config(default_config_path(), [])
    utilities = instantiate(config["utilities"], "config.utilities")
    bank = ContributorBank.load(args.proxy_dir / "bank")
    base = ContributorBank.load(args.proxy_dir / "base_bank")
    retrain = pd.read_csv(RESULTS / "validation_retrain.csv", dtype={"coalition": str})
    holdout = retrain[retrain.coalition.str.startswith("holdout")]
    masks = holdout[list(bank.contributor_ids)].to_numpy(bool)
    lines = ["# LDS noise on the digits validation (written by benchmarks/lds_noise.py)", "",
             f"LDS: 100 x Spearman of sum of values over S vs the retrained utility on {len(masks)} holdout "
             f"coalitions. Seeds 0..{args.seeds - 1}; error: normalised L2 distance to the exact values.", ""]
    for name in args.utilities:
        game = ProxyGame(bank, copy.deepcopy(utilities[name]), base)
        exact = estimate(game, "exact", interactions=False).values
        observed = holdout[name].to_numpy(float)
        lines += [f"## {name}", "",
                  f"Exact Shapley values: LDS {_lds(exact, masks, observed):.1f}; the proxy game itself on the "
                  f"holdouts vs retraining (its fidelity): {100 * spearmanr(game(masks), observed).statistic:.1f}.", "",
                  "| method | budget | LDS median | LDS range | error median |", "|---|---|---|---|---|"]
        for method in ("surrogateshap", "kernelshap", "permutation"):
            for budget in args.budgets:
                lds, err = [], []
                for seed in range(args.seeds):
                    values = estimate(CachedGame(game), method, budget=budget, seed=seed).values
                    lds.append(_lds(values, masks, observed))
                    err.append(np.linalg.norm(values - exact) / np.linalg.norm(exact))
                lines.append(f"| {method} | {budget} | {np.median(lds):.1f} | {min(lds):.1f} .. {max(lds):.1f} | "
                             f"{np.median(err):.3f} |")
                print(lines[-1], flush=True)
        lines.append("")
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
