"""Benchmark: images per second of the Lightning predict loop vs calling the diffusers pipeline directly.

A tiny Stable Diffusion pipeline (random weights, built offline; 32 px) is loaded through the
``StableDiffusion`` backend. The same pipeline object is then timed two ways, in the same process
on CPU, with the same prompts, batch size, steps and per-sample CPU generators:

- direct: ``pipe(prompt=batch, generator=[...], num_inference_steps=S, output_type="pt")`` in a loop;
- predict loop: ``Trainer.predict(SubsetConditionedGenerator(backend, extractors, ...))`` over a
  ``SamplingPlan`` (one trivial extractor, so the loop's own cost is what is measured; Trainer
  construction and setup are included).

Rounds alternate between the two; the best round of each gives the images per second (the
machine is shared, so slow rounds measure the neighbours), the median ratio is printed too.
``--batch-invariant`` times the backend's per-sample mode instead of one batched call per batch.

    python benchmarks/generation_overhead.py [--images 48] [--batch-size 8] [--steps 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the offline tiny pipelines
from tiny_pipelines import save_tiny_sd  # noqa: E402


def mean_pixel(images: torch.Tensor) -> torch.Tensor:
    """A trivial extractor: each image's mean value, shape (B, 1)."""
    return images.mean(dim=(1, 2, 3))[:, None]


def time_direct(pipe, rows: list[dict], batch_size: int, guidance: float, steps: int) -> tuple[float, float]:
    """(wall, CPU) seconds to generate ``rows`` with direct pipeline calls, batch by batch."""
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(rows), batch_size):
        batch = rows[i : i + batch_size]
        pipe(
            prompt=[r["condition"] for r in batch],
            generator=[torch.Generator().manual_seed(int(r["seed"])) for r in batch],
            num_inference_steps=steps, guidance_scale=guidance, height=32, width=32, output_type="pt",
        )
    return time.perf_counter() - start, time.process_time() - cpu


def time_predict(backend, plan, batch_size: int, guidance: float, steps: int) -> tuple[float, float]:
    """(wall, CPU) seconds for ``Trainer.predict`` over the plan (Trainer construction included)."""
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader

    from surrogateshap.generation import SubsetConditionedGenerator, collate_plan_rows

    start, cpu = time.perf_counter(), time.process_time()
    module = SubsetConditionedGenerator(backend, {"mean_pixel": mean_pixel}, guidance, steps)
    loader = DataLoader(plan, batch_size=batch_size, shuffle=False, collate_fn=collate_plan_rows)
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_model_summary=False,
        enable_progress_bar=False,
    )
    out = trainer.predict(module, dataloaders=loader, return_predictions=True)
    assert sum(len(o["seed"]) for o in out) == len(plan)
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    """Run the comparison and print images per second of both and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--guidance", type=float, default=7.5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: steadier on a shared machine)")
    parser.add_argument("--batch-invariant", action="store_true", help="time the per-sample backend mode")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)

    from diffusers.utils import logging as diffusers_logging

    from surrogateshap.contributors import ContributorRegistry
    from surrogateshap.generation import SamplingPlan
    from surrogateshap.generation.backends.stable_diffusion import StableDiffusion

    diffusers_logging.disable_progress_bar()
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_tiny_sd(Path(tmp) / "sd")
        backend = StableDiffusion.from_pretrained(folder, resolution=32, batch_invariant=args.batch_invariant)
    n_contributors = 4
    registry = ContributorRegistry.from_rows(
        [{"example_id": str(i), "contributor": f"artist{i % n_contributors}", "caption": f"art {i}"}
         for i in range(4 * n_contributors)],
        condition="caption",
    )
    plan = SamplingPlan(registry, samples_per_contributor=-(-args.images // n_contributors), seed=0)
    rows = [plan[i] for i in range(len(plan))]
    pipe = backend.pipeline
    torch.set_grad_enabled(False)

    # warm-up (first calls allocate and pick kernels)
    time_direct(pipe, rows[: args.batch_size], args.batch_size, args.guidance, args.steps)
    direct, loop = [], []
    for _ in range(args.rounds):
        direct.append(time_direct(pipe, rows, args.batch_size, args.guidance, args.steps))
        loop.append(time_predict(backend, plan, args.batch_size, args.guidance, args.steps))
    n = len(rows)
    mode = "per-sample (batch_invariant)" if args.batch_invariant else "one batched call per batch"
    print(f"tiny SD, 32 px, {n} images, batch {args.batch_size}, {args.steps} steps, CPU "
          f"({torch.get_num_threads()} threads); backend mode: {mode}")
    for k, clock in enumerate(("wall", "CPU")):
        d = [t[k] for t in direct]
        p = [t[k] for t in loop]
        ips_direct, ips_loop = n / min(d), n / min(p)
        ratio = ips_loop / ips_direct
        median = sorted(a / b for a, b in zip(d, p))[len(p) // 2]
        print(f"[{clock} time] direct pipeline loop: {ips_direct:7.2f} images/s; Lightning predict: {ips_loop:7.2f} "
              f"images/s; predict/direct {ratio:.3f} best-of ({100 * (ratio - 1):+.1f}%), {median:.3f} median "
              f"of per-round ratios")
        print(f"    rounds direct: {', '.join(f'{t:.2f}s' for t in d)}; predict: {', '.join(f'{t:.2f}s' for t in p)}")

if __name__ == "__main__":
    main()
