"""SurrogateShapCallback, ContributorValueMonitor, PlanDataModule and BankWriter: predict, W&B, fit, checkpoints, CLI.

Everything is tiny and offline: a random UNet (sample_size 8) saved with save_pretrained, five
contributors, two cheap extractors (mean pixel; a 4x4 grey thumbnail), a few DDIM steps and
small estimator settings.
"""

from __future__ import annotations

import csv
import json
import os

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from surrogateshap.callbacks import BankWriter, ContributorValueMonitor, SurrogateShapCallback
from surrogateshap.metrics import ContributorFID, ContributorMean, ContributorVendiScore
from surrogateshap.metrics.fid import save_reference_statistics
from tiny_pipelines import save_tiny_class_ddpm
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from surrogateshap.bank import ContributorBank
from surrogateshap.contributors import ContributorRegistry
from surrogateshap.games.proxy import ProxyGame
from surrogateshap.generation import (
    ClassConditionalDDPM,
    PlanDataModule,
    SamplingPlan,
    SubsetConditionedGenerator,
    bank_config,
    generate_bank,
)
from surrogateshap.report import load_attribution_document

N_CONTRIBUTORS = 5
STEPS = 2
GUIDANCE = 2.0
M = 3  # samples per contributor
OPTIONS = {"cv": 2, "n_bootstrap": 2, "param_grid": {"max_depth": [2], "n_estimators": [20], "learning_rate": [0.3]}}
BUDGET = 16
V_EMPTY = {"quality": 0.0, "diversity": 1.0, "fid": 50.0}
TRAINER = {
    "accelerator": "cpu",
    "devices": 1,
    "enable_progress_bar": False,
    "enable_model_summary": False,
}


# ----------------------------------------------------------------------------- extractors and utilities
class MeanPixel(nn.Module):
    """A per-image scalar score (B,): the mean pixel."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.mean(dim=(1, 2, 3))


class GreyThumbnail(nn.Module):
    """A (B, 16) embedding: the grey image average-pooled to 4x4."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return nn.functional.avg_pool2d(images.mean(dim=1, keepdim=True), 2).flatten(1)


def extractors() -> dict:
    return {"brightness": MeanPixel(), "grey": GreyThumbnail()}


def reference() -> np.ndarray:
    return np.random.default_rng(0).uniform(0.3, 0.7, size=(64, 16))


def utilities() -> dict:
    return {
        "quality": ContributorMean(feature="brightness"),
        "diversity": ContributorVendiScore(feature="grey"),
        "fid": ContributorFID(feature="grey", reference=reference()),
    }


ESTIMATOR = {"budget": BUDGET, "n_holdout": 6, "options": OPTIONS}


def callback(bank_dir, **kwargs) -> SurrogateShapCallback:
    args = {"v_empty": V_EMPTY, "estimator": ESTIMATOR, **kwargs}
    return SurrogateShapCallback(utilities(), bank_dir, **args)


def check_document(doc: dict, registry: ContributorRegistry) -> None:
    assert [c["id"] for c in doc["contributors"]] == registry.contributor_ids
    assert [c["n_examples"] for c in doc["contributors"]] == list(registry.n_examples.values())
    assert set(doc["utilities"]) == set(V_EMPTY)
    for name, util in doc["utilities"].items():
        assert util["v_empty"] == pytest.approx(V_EMPTY[name])
        assert sum(util["values"]) == pytest.approx(util["v_full"] - util["v_empty"], abs=1e-6)


# ----------------------------------------------------------------------------- fixtures
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_class_ddpm(tmp_path_factory.mktemp("ddpm"), N_CONTRIBUTORS, attention=False)


def registry_rows() -> list[dict]:
    sizes = [3, 1, 2, 4, 2]
    return [
        {"example_id": f"c{c}-{i}", "contributor": f"c{c}", "label": c}
        for c, size in enumerate(sizes)
        for i in range(size)
    ]


@pytest.fixture(scope="module")
def registry():
    return ContributorRegistry.from_rows(registry_rows(), num_labels=N_CONTRIBUTORS)


def generator_module(model_dir) -> SubsetConditionedGenerator:
    return SubsetConditionedGenerator(
        ClassConditionalDDPM.from_pretrained(model_dir, batch_invariant=False), extractors(), GUIDANCE, STEPS
    )


@pytest.fixture(scope="module")
def complete_bank(model_dir, registry, tmp_path_factory):
    """A bank written by generate_bank (the other route to the same folder layout and config)."""
    out = tmp_path_factory.mktemp("complete") / "bank"
    generate_bank(
        ClassConditionalDDPM.from_pretrained(model_dir, batch_invariant=False), SamplingPlan(registry, M, seed=0),
        extractors(), out, guidance_scale=GUIDANCE, num_inference_steps=STEPS, batch_size=8,
        trainer_kwargs={"enable_progress_bar": False, "accelerator": "cpu"},
    )
    return out


# ----------------------------------------------------------------------------- predict
def test_predict_writes_a_valid_attribution_and_resumes(model_dir, registry, tmp_path):
    bank_dir, out = tmp_path / "bank", tmp_path / "out"
    plan = SamplingPlan(registry, M, seed=0)
    cb = callback(bank_dir, out_dir=out, roles={"c0": "clean", "c3": "marker"})
    trainer = pl.Trainer(**TRAINER, logger=False, callbacks=[BankWriter(bank_dir, plan), cb])
    module = generator_module(model_dir)
    trainer.predict(module, datamodule=PlanDataModule(plan, batch_size=8, bank_dir=bank_dir), return_predictions=False)

    doc = load_attribution_document(out / "attribution.json")
    check_document(doc, registry)
    assert doc["bank_samples"] == N_CONTRIBUTORS * M
    assert doc["contributors"][3]["role"] == "marker" and "role" not in doc["contributors"][1]
    assert (out / "attribution.csv").is_file()
    assert cb.result_.document == doc and len(cb.result_.results) == 3 and cb.paths_["attribution.json"].is_file()
    # the writer recorded the plan and the module's generation settings: generate_bank's config
    bank = ContributorBank.load(bank_dir)
    assert bank.n_examples == registry.n_examples
    assert bank.config == bank_config(plan, module.generation_config())

    # a rerun has nothing left to generate (the predict hooks are skipped) and still attributes
    again = callback(bank_dir, out_dir=tmp_path / "again")
    trainer = pl.Trainer(**TRAINER, logger=False, callbacks=[BankWriter(bank_dir, plan), again])
    data = PlanDataModule(SamplingPlan(registry, M, seed=0), batch_size=8, bank_dir=bank_dir)
    assert len(data.rows()) == 0 and len(BankWriter(bank_dir, plan, bank.config).remaining()) == 0
    trainer.predict(module, datamodule=data, return_predictions=False)
    redo = load_attribution_document(tmp_path / "again" / "attribution.json")
    for name in V_EMPTY:
        assert redo["utilities"][name]["values"] == pytest.approx(doc["utilities"][name]["values"])


def test_predict_resumes_a_bank_of_generate_bank_and_uses_a_base_bank(model_dir, registry, complete_bank, tmp_path):
    # v_empty from a base-model bank for two utilities, a number for the third
    cb = SurrogateShapCallback(
        utilities(), complete_bank, v_empty={"quality": 0.25}, base_bank=complete_bank, out_dir=tmp_path,
        estimator={"budget": BUDGET, "n_holdout": 0, "options": OPTIONS},
    )
    plan = SamplingPlan(registry, M)
    trainer = pl.Trainer(**TRAINER, logger=False, callbacks=[BankWriter(complete_bank, plan), cb])
    trainer.predict(generator_module(model_dir), datamodule=PlanDataModule(plan, batch_size=8, bank_dir=complete_bank))
    doc = load_attribution_document(tmp_path / "attribution.json")
    assert doc["utilities"]["quality"]["v_empty"] == pytest.approx(0.25)
    # v_empty of the others: the utility of all of the base bank's samples (here the bank itself)
    base = ContributorBank.load(complete_bank)
    expected = ProxyGame(base, ContributorVendiScore(feature="grey"), base).v_empty
    assert doc["utilities"]["diversity"]["v_empty"] == pytest.approx(expected)


def test_predict_errors_are_clear(model_dir, registry, tmp_path):
    with pytest.raises(ValueError, match="no v_empty for utilities"):
        SurrogateShapCallback(utilities(), tmp_path, v_empty={"quality": 0.0})
    with pytest.raises(ValueError, match="unknown estimator key"):
        SurrogateShapCallback(utilities(), tmp_path, v_empty=0.0, estimator={"budgett": 3})
    with pytest.raises(ValueError, match="budget must be an integer of at least 2"):
        SurrogateShapCallback(utilities(), tmp_path, v_empty=0.0, estimator={"budget": 1.5})
    # the same checks as estimate(): a numpy integer is an integer
    numpy_budget = SurrogateShapCallback(utilities(), tmp_path, v_empty=0.0, estimator={"budget": np.int64(16)})
    assert numpy_budget.attributor.settings.estimator().budget == 16
    with pytest.raises(ValueError, match="plan must be a SamplingPlan"):
        BankWriter(tmp_path, registry)
    # a bank of another plan in the folder is refused before anything is generated
    plan = SamplingPlan(registry, M, seed=0)
    generate_bank(ClassConditionalDDPM.from_pretrained(model_dir, batch_invariant=False), plan, extractors(),
                  tmp_path / "bank", guidance_scale=GUIDANCE, num_inference_steps=STEPS,
                  trainer_kwargs={"enable_progress_bar": False, "accelerator": "cpu"})
    other = SamplingPlan(registry, M, seed=1)
    trainer = pl.Trainer(**TRAINER, logger=False, callbacks=[BankWriter(tmp_path / "bank", other)])
    with pytest.raises(ValueError, match="different config"):
        trainer.predict(generator_module(model_dir), datamodule=PlanDataModule(other, bank_dir=tmp_path / "bank"))
    # the callback attributes only a bank of its own plan (a folder of another plan is refused)
    trainer = pl.Trainer(**TRAINER, logger=False, callbacks=[
        BankWriter(tmp_path / "other", other), callback(tmp_path / "bank", plan=other, out_dir=tmp_path / "out")])
    with pytest.raises(ValueError, match="generated from another plan"):
        trainer.predict(generator_module(model_dir), datamodule=PlanDataModule(other, bank_dir=tmp_path / "other"))
    assert not (tmp_path / "out").exists()


def test_predict_logs_to_an_offline_wandb_run(model_dir, registry, complete_bank, tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    from lightning.pytorch.loggers import WandbLogger

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    logger = WandbLogger(offline=True, save_dir=str(tmp_path), project="surrogateshap-test")
    cb = callback(complete_bank)  # out_dir: trainer.log_dir / "attribution"
    plan = SamplingPlan(registry, M)
    trainer = pl.Trainer(**TRAINER, logger=logger, callbacks=[BankWriter(complete_bank, plan), cb])
    try:
        trainer.predict(generator_module(model_dir), datamodule=PlanDataModule(plan, batch_size=8,
                                                                               bank_dir=complete_bank))
    finally:
        wandb.finish()
    assert (tmp_path / "attribution" / "attribution.json").is_file()
    tables = sorted(tmp_path.glob("wandb/offline-run-*/files/media/table/contributors_*.table.json"))
    assert tables, sorted(str(p) for p in tmp_path.rglob("*"))[:50]
    table = json.loads(tables[-1].read_text())
    assert [row[0] for row in table["data"]] == registry.contributor_ids
    assert "quality_value" in table["columns"]


# ----------------------------------------------------------------------------- fit
def tiny_training():
    from surrogateshap.examples.digits import DiffusionTraining

    torch.manual_seed(0)
    return DiffusionTraining(
        num_labels=N_CONTRIBUTORS, block_out_channels=(8, 16), learning_rate=1e-3, ema_decay=0.9,
        num_train_timesteps=100,
    )


def train_loader() -> DataLoader:
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(20, 1, 8, 8, generator=gen) * 2 - 1
    labels = torch.arange(20) % N_CONTRIBUTORS
    return DataLoader(TensorDataset(images, labels), batch_size=10)


def monitor(plan: SamplingPlan, **kwargs) -> ContributorValueMonitor:
    args = {"every_n_epochs": 1, "v_empty": V_EMPTY, "estimator": ESTIMATOR, "guidance_scale": GUIDANCE,
            "num_inference_steps": STEPS, "batch_size": 5, **kwargs}
    return ContributorValueMonitor(utilities(), plan, extractors(), **args)


def fit_callback(registry) -> ContributorValueMonitor:
    return monitor(SamplingPlan(registry, 2, seed=0))


@pytest.fixture(scope="module")
def fit_run(registry, tmp_path_factory):
    root = tmp_path_factory.mktemp("fit")
    pl.seed_everything(0)
    cb = fit_callback(registry)
    checkpoint = ModelCheckpoint(dirpath=root / "ckpt", save_last=True, save_top_k=0)
    trainer = pl.Trainer(
        **TRAINER, max_epochs=2, logger=CSVLogger(root, name="logs"), callbacks=[cb, checkpoint], log_every_n_steps=1
    )
    module = tiny_training()
    trainer.fit(module, train_loader())
    return cb, trainer, module, root


def test_fit_mode_logs_values_every_epoch(fit_run, registry):
    cb, trainer, module, root = fit_run
    assert module.training  # train mode restored after sampling
    assert sorted({row["epoch"] for row in cb.history}) == [0, 1]
    assert len(cb.history) == 2 * len(V_EMPTY) * N_CONTRIBUTORS
    assert {row["contributor"] for row in cb.history} == set(registry.contributor_ids)
    assert cb.last_epoch == 1
    with open(os.path.join(trainer.logger.log_dir, "metrics.csv")) as handle:
        rows = list(csv.DictReader(handle))
    columns = set(rows[0])
    for name in V_EMPTY:
        assert {f"contributor_value/{name}/{cid}" for cid in registry.contributor_ids} <= columns
    assert "quality/lds" in columns
    logged = [float(r["contributor_value/quality/c0"]) for r in rows if r["contributor_value/quality/c0"]]
    recorded = [r["value"] for r in cb.history if r["utility"] == "quality" and r["contributor"] == "c0"]
    assert logged == pytest.approx(recorded)
    history = list(csv.DictReader(open(os.path.join(trainer.log_dir, "attribution", "history.csv"))))
    assert len(history) == len(cb.history)


def test_history_survives_state_dict_and_checkpoint_resume(fit_run, registry, tmp_path):
    cb, trainer, _, root = fit_run
    fresh = fit_callback(registry)
    fresh.load_state_dict(cb.state_dict())
    assert fresh.history == cb.history and fresh.last_epoch == cb.last_epoch

    ckpt = root / "ckpt" / "last.ckpt"
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)["callbacks"][cb.state_key]
    assert saved["history"] == cb.history
    resumed = fit_callback(registry)
    trainer = pl.Trainer(**TRAINER, max_epochs=3, logger=False, callbacks=[resumed], enable_checkpointing=False,
                         default_root_dir=tmp_path)
    trainer.fit(tiny_training(), train_loader(), ckpt_path=ckpt)
    assert resumed.history[: len(cb.history)] == cb.history
    assert sorted({row["epoch"] for row in resumed.history}) == [0, 1, 2]


# ----------------------------------------------------------------------------- LightningCLI
def test_lightning_cli_predict(model_dir, tmp_path):
    import yaml

    from surrogateshap.lightning_cli import run_lightning_cli

    registry_file = tmp_path / "registry.csv"
    with open(registry_file, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["example_id", "contributor", "label"])
        writer.writeheader()
        writer.writerows(registry_rows())
    stats = tmp_path / "reference.npz"
    save_reference_statistics(stats, reference())
    options = {**OPTIONS, "param_grid": {k: list(v) for k, v in OPTIONS["param_grid"].items()}}
    plan = {
        "class_path": "surrogateshap.generation.SamplingPlan",
        "init_args": {
            "registry": {
                "class_path": "surrogateshap.contributors.ContributorRegistry.from_file",
                "init_args": {"path": str(registry_file), "num_labels": N_CONTRIBUTORS},
            },
            "samples_per_contributor": M,
        },
    }
    config = {
        "seed_everything": 0,
        "trainer": {
            **TRAINER,
            "logger": False,
            "default_root_dir": str(tmp_path / "run"),
            "callbacks": [
                {"class_path": "surrogateshap.callbacks.BankWriter",
                 "init_args": {"output_dir": str(tmp_path / "bank"), "plan": plan}},
                {
                    "class_path": "surrogateshap.callbacks.SurrogateShapCallback",
                    "init_args": {
                        "bank_dir": str(tmp_path / "bank"),
                        "out_dir": str(tmp_path / "out"),
                        "utilities": {
                            "quality": {"class_path": "surrogateshap.metrics.ContributorMean",
                                        "init_args": {"feature": "brightness"}},
                            "diversity": {"class_path": "surrogateshap.metrics.ContributorVendiScore",
                                          "init_args": {"feature": "grey"}},
                            "fid": {"class_path": "surrogateshap.metrics.ContributorFID",
                                    "init_args": {"feature": "grey", "reference": str(stats)}},
                        },
                        "v_empty": V_EMPTY,
                        "roles": {"c0": "clean"},
                        "estimator": {"budget": BUDGET, "n_holdout": 6, "options": options},
                    },
                },
            ],
        },
        "model": {
            "class_path": "surrogateshap.generation.SubsetConditionedGenerator",
            "init_args": {
                "backend": {
                    "class_path": "surrogateshap.generation.backends.ddpm.ClassConditionalDDPM.from_pretrained",
                    "init_args": {"path": str(model_dir), "batch_invariant": False},
                },
                "extractors": {
                    "brightness": {"class_path": f"{__name__}.MeanPixel"},
                    "grey": {"class_path": f"{__name__}.GreyThumbnail"},
                },
                "guidance_scale": GUIDANCE,
                "num_inference_steps": STEPS,
            },
        },
        "data": {
            "class_path": "surrogateshap.generation.PlanDataModule",
            "init_args": {"plan": plan, "bank_dir": str(tmp_path / "bank"), "batch_size": 8},
        },
    }
    path = tmp_path / "predict.yaml"
    path.write_text(yaml.safe_dump(config))
    run_lightning_cli(["predict", "--config", str(path)])
    doc = load_attribution_document(tmp_path / "out" / "attribution.json")
    registry = ContributorRegistry.from_file(registry_file, num_labels=N_CONTRIBUTORS)
    check_document(doc, registry)
    assert doc["contributors"][0]["role"] == "clean"
    assert len(ContributorBank.load(tmp_path / "bank")) == N_CONTRIBUTORS * M


@pytest.mark.parametrize("name", ["digits_predict.yaml", "digits_shared_predict.yaml"])
def test_shipped_predict_config_parses(name):
    """The shipped LightningCLI predict configs type-check (nothing is instantiated)."""
    from pathlib import Path

    from surrogateshap.lightning_cli import run_lightning_cli

    config = Path(__file__).resolve().parents[1] / "configs" / name
    with pytest.raises(SystemExit) as exit_info:
        run_lightning_cli(["predict", "--config", str(config), "--print_config"])
    assert exit_info.value.code in (0, None)


# ----------------------------------------------------------------------------- shared conditions (soft membership)
def shared_registry() -> ContributorRegistry:
    """c0 and c1 share label 0 (a bright and a dark twin, 6 examples each); c2..c4 hold labels 2..4."""
    rows = [{"example_id": f"{c}-{i}", "contributor": c, "label": 0} for c in ("c0", "c1") for i in range(6)]
    rows += [{"example_id": f"c{k}-0", "contributor": f"c{k}", "label": k} for k in (2, 3, 4)]
    return ContributorRegistry.from_rows(rows, num_labels=N_CONTRIBUTORS)


class TwinImages:
    """Training images by example id: c0's are bright, everyone else's dark (the twins separate)."""

    def __call__(self, ids: list[str]) -> torch.Tensor:
        level = torch.tensor([0.8 if i.startswith("c0") else -0.8 for i in ids])
        noise = torch.randn(len(ids), 1, 8, 8, generator=torch.Generator().manual_seed(0))
        return level[:, None, None, None] + 0.05 * noise


SOFT = {"kind": "soft", "features": ["brightness"], "training_images": TwinImages(), "classifier": {"cv": 3}}


def test_predict_with_soft_membership_values_the_twins_behind_a_shared_label(model_dir, tmp_path):
    from surrogateshap.membership import SoftMembership

    registry = shared_registry()
    out, bank_dir = tmp_path / "out", tmp_path / "bank"
    plan = SamplingPlan(registry, 4, seed=0, per_unit=True)
    assert plan.registry.contributor_ids == ["label:0", "c2", "c3", "c4"]
    module = generator_module(model_dir)
    cb = callback(bank_dir, out_dir=out, membership=SOFT, plan=plan, extractors=module.extractors)
    trainer = pl.Trainer(**TRAINER, logger=False, callbacks=[BankWriter(bank_dir, plan), cb])
    trainer.predict(module, datamodule=PlanDataModule(plan, batch_size=8, bank_dir=bank_dir), return_predictions=False)

    doc = load_attribution_document(out / "attribution.json")
    check_document(doc, registry)  # the players are the contributors, not the units
    assert doc["bank_samples"] == 16
    (unit,) = doc["membership"]["shared_units"]
    assert unit["unit"] == "label:0" and unit["holders"] == {"c0": 6, "c1": 6}
    assert unit["accuracy"] == 1.0 and not unit["fallback"]
    membership = SoftMembership.load(out / "membership.npz")
    assert membership.contributor_ids == registry.contributor_ids and len(membership) == 16
    # the written values are those of the proxy game under the written responsibilities
    bank = ContributorBank.load(bank_dir)
    game = ProxyGame(bank, ContributorMean(feature="brightness"), V_EMPTY["quality"], membership=membership)
    full = np.ones((1, N_CONTRIBUTORS), dtype=bool)
    assert doc["utilities"]["quality"]["v_full"] == pytest.approx(float(game(full)[0]))
    only_c0, only_c1 = np.eye(N_CONTRIBUTORS, dtype=bool)[:2]
    assert game(only_c0[None])[0] != pytest.approx(game(only_c1[None])[0])  # the proxy tells the twins apart


def test_soft_membership_needs_a_plan_per_unit(tmp_path):
    with pytest.raises(ValueError, match="per_unit=True"):
        callback(tmp_path, membership=SOFT)
    with pytest.raises(ValueError, match="per_unit=True"):
        callback(tmp_path, membership=SOFT, plan=SamplingPlan(shared_registry(), 1))
    with pytest.raises(ValueError, match="per_unit=True"):
        monitor(SamplingPlan(shared_registry(), 1), membership=SOFT)


def test_bad_membership_settings_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown membership key"):
        callback(tmp_path, membership={"kind": "soft", "feature": ["brightness"]})
    with pytest.raises(ValueError, match="'plain', 'soft' or 'shares'"):
        callback(tmp_path, membership={"kind": "hard"})
    with pytest.raises(ValueError, match="needs `features`"):
        callback(tmp_path, membership={"kind": "soft", "features": ["brightness"]})


def test_fit_mode_with_soft_membership_logs_every_contributor(tmp_path):
    pl.seed_everything(0)
    plan = SamplingPlan(shared_registry(), 2, seed=0, per_unit=True)
    cb = monitor(plan, batch_size=4, membership=SOFT, out_dir=tmp_path)
    trainer = pl.Trainer(**TRAINER, max_epochs=2, logger=False, callbacks=[cb], enable_checkpointing=False)
    trainer.fit(tiny_training(), train_loader())
    registry = shared_registry()
    assert {row["contributor"] for row in cb.history} == set(registry.contributor_ids)
    assert len(cb.history) == 2 * len(V_EMPTY) * N_CONTRIBUTORS
    model = cb.attributor.membership.model_
    assert model is not None and model.calibration_["label:0"]["accuracy"] == 1.0  # fitted once, reused


# ----------------------------------------------------------------------------- a user's own LightningModule
def readme_user_module() -> type:
    """The LightningModule of README's "A LightningModule of your own" (a user's code, not ours)."""
    import re
    from pathlib import Path

    text = (Path(__file__).parents[1] / "README.md").read_text()
    section = text.split("#### A LightningModule of your own", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    return namespace["CaptionedFineTuning"]


def caption_registry() -> ContributorRegistry:
    rows = [{"example_id": f"{who}-{i}", "contributor": who, "caption": f"a painting by {who}"}
            for who in ("ann", "bob", "cy", "di") for i in range(2)]
    return ContributorRegistry.from_rows(rows, condition="caption")


def caption_batches() -> DataLoader:
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(8, 3, 32, 32, generator=gen) * 2 - 1
    captions = [f"a painting by {who}" for who in ("ann", "bob", "cy", "di") for _ in range(2)]
    return DataLoader(list(zip(images, captions)), batch_size=4)


def test_a_user_lightning_module_trains_with_the_monitor_and_logs_values(tmp_path):
    from tiny_pipelines import tiny_sd_pipeline

    module_class = readme_user_module()
    pl.seed_everything(0)
    model = module_class(tiny_sd_pipeline(), learning_rate=1e-3)
    before = {k: v.detach().clone() for k, v in model.unet.state_dict().items()}
    registry = caption_registry()
    values = ContributorValueMonitor(
        {"quality": ContributorMean(feature="brightness")}, SamplingPlan(registry, 2, seed=0),
        {"brightness": MeanPixel()}, every_n_epochs=1, v_empty=0.0,
        estimator={"budget": 16, "n_holdout": 0, "options": OPTIONS}, num_inference_steps=2, guidance_scale=3.0,
        batch_size=4,
    )
    trainer = pl.Trainer(**TRAINER, max_epochs=2, logger=CSVLogger(tmp_path, name="logs"), callbacks=[values],
                         log_every_n_steps=1, enable_checkpointing=False)
    trainer.fit(model, caption_batches())
    with open(os.path.join(trainer.logger.log_dir, "metrics.csv")) as handle:
        rows = list(csv.DictReader(handle))
    logged = {k for row in rows for k, v in row.items() if v}
    assert {f"contributor_value/quality/{cid}" for cid in registry.contributor_ids} <= logged and "train_loss" in logged
    assert sorted({row["epoch"] for row in values.history}) == [0, 1]
    assert {row["contributor"] for row in values.history} == set(registry.contributor_ids)
    # the values of each attribution add up to v_full - v_empty of the model at that epoch
    for result in values.last_results_:
        assert result.attribution.values.sum() == pytest.approx(result.attribution.v_full - 0.0, abs=1e-9)
    # sampling through to_backend() neither froze nor copied the UNet: training went on changing it
    assert all(p.requires_grad for p in model.unet.parameters()) and model.training and model.unet.training
    assert not model.text_encoder.training  # a part the user keeps in eval mode stays there
    assert any(not torch.equal(before[k], v) for k, v in model.unet.state_dict().items())


def test_a_module_without_to_backend_is_refused_before_training(registry):
    trainer = pl.Trainer(**TRAINER, max_epochs=1, logger=False, callbacks=[fit_callback(registry)],
                         enable_checkpointing=False)

    class NoBackend(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = nn.Linear(1, 1)

        def training_step(self, batch, batch_idx):
            return self.layer(batch[0].float().reshape(-1, 1)).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    with pytest.raises(ValueError, match="NoBackend has no to_backend()"):
        trainer.fit(NoBackend(), train_loader())


def test_a_bank_of_an_in_memory_text_to_image_pipeline_is_attributed(tmp_path):
    from tiny_pipelines import tiny_sd_pipeline

    from surrogateshap.attribution import attribute_bank
    from surrogateshap.generation.backends.stable_diffusion import StableDiffusion

    pipe = tiny_sd_pipeline()
    backend = StableDiffusion.from_pipeline(pipe)
    assert backend.unet is pipe.unet and backend.model_path is None  # the pipeline's own modules, no copy
    registry = caption_registry()
    bank = generate_bank(backend, SamplingPlan(registry, 3, seed=0), {"brightness": MeanPixel()}, tmp_path / "bank",
                         guidance_scale=3.0, num_inference_steps=2,
                         trainer_kwargs={"enable_progress_bar": False, "accelerator": "cpu"})
    assert bank.config["generation"]["backend"] == "StableDiffusion" and len(bank) == 12
    result = attribute_bank(bank, {"quality": ContributorMean(feature="brightness")}, {"quality": 0.0},
                            {"budget": 16, "n_holdout": 0, "options": OPTIONS}, progress=False)
    doc = result.document
    assert [c["id"] for c in doc["contributors"]] == registry.contributor_ids
    quality = doc["utilities"]["quality"]
    assert sum(quality["values"]) == pytest.approx(quality["v_full"], abs=1e-9)
    # the prompts drive the samples: each artist's mean brightness differs, so the game is not flat
    per_artist = [bank["brightness"][bank.contributor_index == i].mean() for i in range(4)]
    assert np.ptp(per_artist) > 0
    with pytest.raises(ValueError, match="either model_path .* or pipeline"):
        StableDiffusion()
    with pytest.raises(ValueError, match="an in-memory pipeline is used as it is"):
        StableDiffusion.from_pipeline(pipe, torch_dtype="bfloat16")
    assert pipe.unet.dtype == torch.float32


def test_monitor_logs_a_few_series_at_many_contributors_and_keeps_every_value(registry, tmp_path):
    cb = monitor(SamplingPlan(registry, 2, seed=0), log_all_up_to=2, log_top_k=1, out_dir=tmp_path)
    trainer = pl.Trainer(**TRAINER, max_epochs=1, logger=CSVLogger(tmp_path, name="logs"), callbacks=[cb],
                         enable_checkpointing=False, log_every_n_steps=1)
    trainer.fit(tiny_training(), train_loader())
    with open(os.path.join(trainer.logger.log_dir, "metrics.csv")) as handle:
        columns = set(next(csv.reader(handle)))
    for name in V_EMPTY:
        series = {c for c in columns if c.startswith(f"contributor_value/{name}/")}
        assert len(series) == 2 and f"{name}/value_spread" in columns  # the largest and the smallest value
        values = {r["contributor"]: r["value"] for r in cb.history if r["utility"] == name}
        assert len(values) == N_CONTRIBUTORS  # the history (and history.csv) keeps them all
        ends = {max(values, key=values.get), min(values, key=values.get)}
        assert series == {f"contributor_value/{name}/{c}" for c in ends}
