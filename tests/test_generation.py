"""Subset-conditioned generation: class-conditional DDPM backend, predict loop, BankWriter, resume, DDP.

Tiny UNet from a config with random weights, saved with save_pretrained and loaded through
ClassConditionalDDPM.from_pretrained; nothing is downloaded.
"""

from __future__ import annotations

import json
import re
import sys

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler
from surrogateshap.callbacks import BankWriter
from tiny_pipelines import save_tiny_class_ddpm
from torch import nn

from surrogateshap.bank import ContributorBank, existing_rows
from surrogateshap.contributors import ContributorRegistry
from surrogateshap.generation import ClassConditionalDDPM, SamplingPlan, SubsetConditionedGenerator, generate_bank

NUM_LABELS = 3
STEPS = 3
GUIDANCE = 2.0


# ----------------------------------------------------------------------------- fixtures
class Projection(nn.Module):
    """A fixed random projection of the flattened image (a stand-in feature extractor)."""

    def __init__(self, dim_in: int = 3 * 8 * 8, dim_out: int = 6) -> None:
        super().__init__()
        self.register_buffer("weight", torch.randn(dim_in, dim_out, generator=torch.Generator().manual_seed(3)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.flatten(1) @ self.weight


def mean_pixel(images: torch.Tensor) -> torch.Tensor:
    """A per-image scalar score (a plain function extractor)."""
    return images.mean(dim=(1, 2, 3))


def extractors() -> dict:
    return {"proj": Projection(), "brightness": mean_pixel}


class StopAfter(pl.Callback):
    """Simulates a killed run: raises after ``n`` finished batches."""

    def __init__(self, n: int) -> None:
        self.n, self.seen = n, 0

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self.seen += 1
        if self.seen >= self.n:
            raise RuntimeError("simulated kill")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_class_ddpm(tmp_path_factory.mktemp("ddpm"), NUM_LABELS, attention=True)


@pytest.fixture(scope="module")
def backend(model_dir):
    return ClassConditionalDDPM.from_pretrained(model_dir)


@pytest.fixture(scope="module")
def plan():
    rows = [
        {"example_id": i, "contributor": c, "label": lab}
        for i, (c, lab) in enumerate([("a", 0), ("a", 0), ("a", 1), ("b", 1), ("b", 2), ("c", 2)])
    ]
    return SamplingPlan(ContributorRegistry.from_rows(rows, num_labels=NUM_LABELS), 4, seed=11)


def _run(backend, plan, out, batch_size, **kwargs):
    trainer_kwargs = {"accelerator": "cpu", "enable_progress_bar": False, **kwargs.pop("trainer_kwargs", {})}
    return generate_bank(
        backend,
        plan,
        extractors(),
        out,
        guidance_scale=GUIDANCE,
        num_inference_steps=STEPS,
        batch_size=batch_size,
        trainer_kwargs=trainer_kwargs,
        **kwargs,
    )


@pytest.fixture(scope="module")
def reference(backend, plan, tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    bank = _run(backend, plan, root / "bank", 8, save_images_dir=root / "images")
    return bank, root


def assert_same_bank(a: ContributorBank, b: ContributorBank) -> None:
    assert a.contributor_ids == b.contributor_ids and a.n_examples == b.n_examples
    assert a.array_names == b.array_names
    for name in ("contributor_index", "sample_index", "seed", *a.array_names):
        assert np.array_equal(a[name], b[name]), name
        assert a[name].dtype == b[name].dtype


def shard_row_keys(directory) -> list[tuple[str, int]]:
    """Every (contributor, sample_index) written in any shard of any manifest (duplicates kept)."""
    from safetensors.numpy import load_file

    keys = []
    for manifest_path in sorted(directory.glob("manifest*.json")):
        manifest = json.loads(manifest_path.read_text())
        for entry in manifest["shards"]:
            shard = load_file(directory / entry["file"])
            ids = manifest["contributor_ids"]
            keys += [
                (ids[c], s)
                for c, s in zip(shard["__contributor_index__"].tolist(), shard["__sample_index__"].tolist())
            ]
    return keys


# ----------------------------------------------------------------------------- backend
def test_missing_model_path_names_the_file(tmp_path, model_dir):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nowhere" / "unet" / "config.json"))):
        ClassConditionalDDPM.from_pretrained(tmp_path / "nowhere")
    partial = tmp_path / "partial"
    (partial / "unet").mkdir(parents=True)
    for f in (model_dir / "unet").iterdir():
        (partial / "unet" / f.name).write_bytes(f.read_bytes())
    with pytest.raises(FileNotFoundError, match=re.escape(str(partial / "scheduler" / "scheduler_config.json"))):
        ClassConditionalDDPM.from_pretrained(partial)


def test_loaded_model_and_null_label(backend, model_dir):
    assert backend.num_labels == NUM_LABELS and backend.null_label == NUM_LABELS
    assert isinstance(backend.scheduler, DDIMScheduler)
    assert isinstance(ClassConditionalDDPM.from_pretrained(model_dir, scheduler="ddpm").scheduler.__class__, type)
    seen = []
    hook = backend.unet.register_forward_pre_hook(
        lambda mod, args, kwargs: seen.append(kwargs["class_labels"].tolist()), with_kwargs=True
    )
    try:
        gens = [torch.Generator().manual_seed(0) for _ in range(2)]
        backend.generate([0, 2], gens, guidance_scale=GUIDANCE, num_inference_steps=2)
    finally:
        hook.remove()
    # one UNet call per sample and step, conditional and null label together; class 0 is never the null
    assert seen == [[0, NUM_LABELS], [2, NUM_LABELS]] * 2
    with pytest.raises(ValueError, match="null label"):
        backend.generate([NUM_LABELS], [torch.Generator()], GUIDANCE, 2)


def test_backend_really_conditions(backend):
    def images(labels, seed=5, w=GUIDANCE):
        gens = [torch.Generator().manual_seed(seed) for _ in labels]
        return backend.generate(labels, gens, guidance_scale=w, num_inference_steps=STEPS)

    out = images([0, 1, 2, 0])
    assert out.shape == (4, 3, 8, 8) and out.dtype == torch.float32
    assert 0 <= out.min() and out.max() <= 1
    assert torch.equal(out[:, 0], out[:, 1])  # one-channel UNet repeated to RGB
    for i, j in ((0, 1), (0, 2), (1, 2)):  # same noise, different classes -> different images
        assert (out[i] - out[j]).abs().max() > 1e-2
    assert torch.equal(out[0], out[3])  # same class and seed -> the same image, wherever it sits in the batch
    assert torch.equal(images([1])[0], out[1])  # and alone in its batch
    assert not torch.equal(images([0], seed=6)[0], out[0])  # another seed -> another image
    assert not torch.equal(images([0], w=1.0)[0], out[0])  # guidance matters


def test_ddpm_scheduler_noise_is_per_sample(model_dir):
    ddpm = ClassConditionalDDPM.from_pretrained(model_dir, scheduler="ddpm")
    gens = [torch.Generator().manual_seed(s) for s in (1, 2, 1)]
    out = ddpm.generate([1, 1, 1], gens, GUIDANCE, STEPS)
    assert torch.equal(out[0], out[2]) and not torch.equal(out[0], out[1])
    alone = ddpm.generate([1], [torch.Generator().manual_seed(2)], GUIDANCE, STEPS)
    assert torch.equal(alone[0], out[1])


def test_batched_unet_differs_only_by_rounding(model_dir):
    # CPU conv/GEMM kernels depend on the batch shape, so one batched UNet call is batch-size
    # independent only up to float rounding; batch_invariant=True (the default) is exact.
    fast = ClassConditionalDDPM.from_pretrained(model_dir, batch_invariant=False)
    labels = [0, 1, 2, 0, 1, 2]
    together = fast.generate(labels, [torch.Generator().manual_seed(i) for i in range(6)], GUIDANCE, STEPS)
    alone = torch.cat([fast.generate([lab], [torch.Generator().manual_seed(i)], GUIDANCE, STEPS)
                       for i, lab in enumerate(labels)])
    torch.testing.assert_close(together, alone, atol=1e-4, rtol=0)


# ----------------------------------------------------------------------------- predict loop and bank
def test_predict_step_returns_per_sample_arrays(backend, plan):
    module = SubsetConditionedGenerator(backend, extractors(), GUIDANCE, STEPS)
    from surrogateshap.generation import collate_plan_rows

    batch = collate_plan_rows([plan[i] for i in (0, 5)])
    out = module.predict_step(batch, 0)
    assert out["contributor"] == ["a", "b"]
    assert out["sample_index"].tolist() == [0, 1] and out["seed"].tolist() == [plan[0]["seed"], plan[5]["seed"]]
    assert out["features"]["proj"].shape == (2, 6) and out["features"]["proj"].dtype == np.float32
    assert out["features"]["brightness"].shape == (2,)
    again = module.predict_step(batch, 1)  # generators are re-created each call
    assert np.array_equal(out["features"]["proj"], again["features"]["proj"])


def test_reference_bank_and_images(reference, plan):
    bank, root = reference
    assert len(bank) == len(plan) == 12
    assert bank.contributor_ids == ["a", "b", "c"] and bank.n_examples == {"a": 3, "b": 2, "c": 1}
    assert [(bank.contributor_ids[c], s) for c, s in zip(bank.contributor_index, bank.sample_index)] == [
        plan.row_key(i) for i in range(len(plan))
    ]
    assert bank.seed.tolist() == [plan[i]["seed"] for i in range(len(plan))]
    assert bank.config["plan"] == plan.describe()
    assert len({tuple(r) for r in bank["proj"].tolist()}) == 12  # every sample differs
    assert sorted(p.name for p in (root / "images").iterdir())[:2] == ["a_000000.png", "a_000001.png"]
    assert len(list((root / "images").glob("*.png"))) == 12


@pytest.mark.parametrize("batch_size", [1, 3])
def test_batch_size_independence(reference, backend, plan, tmp_path, batch_size):
    assert_same_bank(_run(backend, plan, tmp_path / "bank", batch_size), reference[0])


def test_kill_and_resume(reference, backend, plan, tmp_path):
    out = tmp_path / "bank"
    with pytest.raises(RuntimeError, match="simulated kill"):
        _run(backend, plan, out, 3, callbacks=[StopAfter(2)])
    assert len(existing_rows(out)) == 6  # two batches of three were written before the kill
    bank = _run(backend, plan, out, 5)  # resume, even with another batch size
    assert_same_bank(bank, reference[0])
    keys = shard_row_keys(out)
    assert len(keys) == len(set(keys)) == len(plan)  # no row missing or written twice
    again = _run(backend, plan, out, 5)  # a finished bank: nothing left to generate
    assert_same_bank(again, reference[0])
    assert len(shard_row_keys(out)) == len(plan)


def test_lightning_building_blocks_epoch_writer(reference, backend, plan, tmp_path):
    # the pieces generate_bank wires together, used directly: one shard for the whole epoch
    from torch.utils.data import DataLoader

    from surrogateshap.generation import collate_plan_rows

    writer = BankWriter(tmp_path / "bank", plan, config=reference[0].config, write_interval="epoch")
    loader = DataLoader(writer.remaining(), batch_size=5, collate_fn=collate_plan_rows)
    module = SubsetConditionedGenerator(backend, extractors(), GUIDANCE, STEPS)
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, callbacks=[writer], enable_progress_bar=False)
    trainer.predict(module, dataloaders=loader)
    manifest = json.loads((tmp_path / "bank" / "manifest.json").read_text())
    assert [e["rows"] for e in manifest["shards"]] == [12]
    assert_same_bank(ContributorBank.load(tmp_path / "bank"), reference[0])


def test_rerun_with_other_config_is_refused(reference, backend, plan, tmp_path):
    out = tmp_path / "bank"
    reference[0].save(out)  # a finished bank of this config: nothing left to generate
    writer = BankWriter(out, plan, config=reference[0].config)
    assert len(writer.remaining()) == 0
    with pytest.raises(ValueError, match=r"different config: generation.guidance_scale"):
        generate_bank(backend, plan, extractors(), out, guidance_scale=3.0, num_inference_steps=STEPS)
    other = {**extractors(), "extra": lambda images: images.mean(dim=(1, 2, 3))}
    with pytest.raises(ValueError, match=r"different config: generation.features"):
        generate_bank(backend, plan, other, out, guidance_scale=GUIDANCE, num_inference_steps=STEPS)
    fewer = ContributorRegistry.from_rows([{"example_id": "x", "contributor": "a", "label": 0}], num_labels=1)
    with pytest.raises(ValueError, match="other contributors"):
        BankWriter(out, SamplingPlan(fewer, 1), config=reference[0].config).remaining()


def test_trainer_precision_reaches_backend(reference, model_dir, plan, tmp_path):
    backend = ClassConditionalDDPM.from_pretrained(model_dir)  # the Trainer converts it: use a fresh copy
    bank = _run(backend, plan, tmp_path / "bank", 6, trainer_kwargs={"precision": "bf16-true"})
    assert backend.unet.dtype == torch.bfloat16
    assert bank["proj"].dtype == np.float32 and np.isfinite(bank["proj"]).all()
    assert np.abs(bank["brightness"] - reference[0]["brightness"]).max() < 0.1  # same samples, coarser numbers
    assert not np.array_equal(bank["brightness"], reference[0]["brightness"])


def ddp_kwargs() -> dict:
    from lightning.pytorch.strategies import DDPStrategy

    # Forked workers start in ~1 s; spawned ones re-import torch, Lightning and diffusers (~70 s on a
    # loaded 2-core machine). Lightning sets one thread per worker, so forking after OpenMP use is safe.
    start = "fork" if sys.platform.startswith("linux") else "spawn"
    return {"devices": 2, "strategy": DDPStrategy(start_method=start, process_group_backend="gloo")}


def test_two_process_ddp_equals_one_process(reference, backend, plan, tmp_path):
    out = tmp_path / "bank"
    bank = _run(backend, plan, out, 2, trainer_kwargs=ddp_kwargs())
    assert sorted(p.name for p in out.glob("manifest*.json")) == ["manifest.rank0.json", "manifest.rank1.json"]
    keys = shard_row_keys(out)
    assert len(keys) == len(set(keys)) == len(plan)
    assert_same_bank(bank, reference[0])


def test_a_bank_of_two_ranks_resumed_by_three_equals_a_one_rank_bank(reference, backend, plan, tmp_path):
    """As on a cluster: a 2-process job is killed (some shards lost), then resumed with 3 processes."""
    out = tmp_path / "bank"
    _run(backend, plan, out, 2, trainer_kwargs=ddp_kwargs())
    lost = sorted(out.glob("shard-rank1-*.safetensors"))[:2] + sorted(out.glob("shard-rank0-*.safetensors"))[-1:]
    for shard in lost:  # written atomically, so a kill loses whole shards; the writer drops them on resume
        shard.unlink()
    assert len(existing_rows(out)) < len(plan)
    bank = _run(backend, plan, out, 2, trainer_kwargs={**ddp_kwargs(), "devices": 3})
    assert (out / "manifest.rank2.json").is_file()
    listed = [e["file"] for m in out.glob("manifest*.json") for e in json.loads(m.read_text())["shards"]]
    assert all((out / f).is_file() for f in listed)  # the lost shards were dropped from their manifests
    assert_same_bank(bank, reference[0])
    keys = shard_row_keys(out)
    assert len(keys) == len(set(keys)) == len(plan)


def test_ddp_resume_with_fewer_rows_than_processes(reference, backend, plan, tmp_path):
    ref = reference[0]
    out = tmp_path / "bank"
    keep = np.arange(len(ref) - 1)  # a single-process run killed before its last row
    ContributorBank(
        {k: ref[k][keep] for k in ref.array_names},
        [ref.contributor_ids[c] for c in ref.contributor_index[keep]],
        ref.n_examples,
        sample_index=ref.sample_index[keep],
        seed=ref.seed[keep],
        config=ref.config,
    ).save(out)
    bank = _run(backend, plan, out, 4, trainer_kwargs=ddp_kwargs())  # rank 1 gets no rows at all
    assert_same_bank(bank, ref)
    keys = shard_row_keys(out)
    assert len(keys) == len(set(keys)) == len(plan)
