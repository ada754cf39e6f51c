"""Wall-clock time of an embedded demo (`surrogateshap demo --setting digits|artists`) on this machine, from a
fresh folder.

    .venv/bin/python benchmarks/demo_time.py [--setting artists] [--out DIR]

Runs the shipped demo end to end in a subprocess (bank generation, the base model's bank, every utility,
SurrogateSHAP, LDS, plots, report, W&B offline) and prints the total and the per-stage timings recorded in
attribution.json, with the ratio to the 5-minute target.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 300.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: a temporary one, removed).")
    parser.add_argument("--setting", choices=["digits", "artists"], default="digits", help="which demo (digits).")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="surrogateshap-demo-"))
    if out.exists():
        shutil.rmtree(out)
    env = {**os.environ, "WANDB_MODE": os.environ.get("WANDB_MODE", "offline"), "WANDB_SILENT": "true"}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "surrogateshap.cli", "demo", "--setting", args.setting, "--out", str(out),
                    "--no-progress"], check=True, env=env, stdout=subprocess.DEVNULL)
    total = time.perf_counter() - start
    timings = json.loads((out / "attribution.json").read_text())["timings"]
    share = total / TARGET_SECONDS
    print(f"{args.setting} demo wall clock: {total:.1f} s ({share:.2f} of the {TARGET_SECONDS:.0f} s target)")
    for stage, seconds in timings.items():
        print(f"  {stage:>20}: {seconds:7.1f} s")
    if args.out is None:
        shutil.rmtree(out)


if __name__ == "__main__":
    main()
