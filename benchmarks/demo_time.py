"""Wall-clock time of the full digits demo (`surrogateshap demo`) on this machine, from a fresh folder.

    .venv/bin/python benchmarks/demo_time.py [--out DIR]

Runs the shipped demo end to end in a subprocess (bank generation, the untrained network's bank,
five utilities, SurrogateSHAP, LDS, plots, report, W&B offline) and prints the total and the
per-stage timings recorded in attribution.json, with the ratio to the 5-minute target.
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
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="surrogateshap-demo-"))
    if out.exists():
        shutil.rmtree(out)
    env = {**os.environ, "WANDB_MODE": os.environ.get("WANDB_MODE", "offline"), "WANDB_SILENT": "true"}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "surrogateshap.cli", "demo", "--out", str(out), "--no-progress"],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    total = time.perf_counter() - start
    timings = json.loads((out / "attribution.json").read_text())["timings"]
    print(f"demo wall clock: {total:.1f} s ({total / TARGET_SECONDS:.2f} of the {TARGET_SECONDS:.0f} s target)")
    for stage, seconds in timings.items():
        print(f"  {stage:>20}: {seconds:7.1f} s")
    if args.out is None:
        shutil.rmtree(out)


if __name__ == "__main__":
    main()
