"""Is the planted truth visible? Per-role statistics on the training data and on the generated bank.

    .venv/bin/python benchmarks/planted_effect.py [--bank DIR]

For each contributor, with the shipped feature network: the FID of its images against the clean
held-out reference, the mean classifier confidence (the quality score) and the marker rate, once
on its real (planted) training images and, with ``--bank`` (a demo output's ``bank`` folder), on
its generated samples. Prints the per-role means: corrupted contributors must stand out on FID and
quality, marker contributors on the marker rate, in the data *and* in what the DDPM reproduces.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from surrogateshap.metrics import ContributorFID

from surrogateshap.config import load_config
from surrogateshap.examples.digits import DigitsExtractor
from surrogateshap.examples.digits.demo import default_config_path
from surrogateshap.examples.digits.planting import DigitsContributors


def _fid(features: np.ndarray, reference: np.ndarray) -> float:
    metric = ContributorFID(feature="embedding", reference=reference, num_contributors=1)
    metric.update(torch.from_numpy(np.asarray(features)), torch.zeros(len(features), dtype=torch.long))
    return float(metric.compute())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bank", type=Path, default=None, help="a demo output's bank folder (generated samples).")
    args = parser.parse_args()
    config = load_config(default_config_path())
    data = DigitsContributors.build(config["data"])
    features_path = config["paths"]["features"]
    nets = {name: DigitsExtractor(features_path, name) for name in ("embedding", "confidence", "marker")}
    with torch.no_grad():
        ref = nets["embedding"](torch.from_numpy(data.reference_images[:, None]).repeat(1, 3, 1, 1)).numpy()
    reference = ref.astype(np.float64)
    rows = []
    bank = None
    if args.bank is not None:
        from surrogateshap.bank import ContributorBank

        bank = ContributorBank.load(args.bank)
    for index, cid in enumerate(data.contributor_ids):
        images = torch.from_numpy(data.images[data.contributor_index == index][:, None]).repeat(1, 3, 1, 1)
        with torch.no_grad():
            out = {name: net(images).numpy() for name, net in nets.items()}
        row = {"contributor": cid, "role": data.roles[cid], "data_fid": _fid(out["embedding"], reference),
               "data_quality": out["confidence"].mean(), "data_marker": out["marker"].mean()}
        if bank is not None:
            mine = bank.contributor_index == bank.contributor_ids.index(cid)
            row.update({"gen_fid": _fid(bank["embedding"][mine], reference),
                        "gen_quality": bank["confidence"][mine].mean(), "gen_marker": bank["marker"][mine].mean()})
        rows.append(row)
    frame = pd.DataFrame(rows)
    pd.set_option("display.width", 160)
    print(frame.groupby("role").mean(numeric_only=True).round(3).to_string())
    print()
    print(frame.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
