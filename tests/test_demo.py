"""The digits demo end to end on a reduced config, with the shipped models (no mocks).

Ground truth is planted in the data: three contributors' images are inverted (corrupted) and two
carry a corner marker. The attribution must find them.
"""

import json
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from surrogateshap.bank import ContributorBank
from surrogateshap.cli import main
from surrogateshap.config import load_config
from surrogateshap.examples.digits.demo import default_config_path, ensure_generator, run_demo
from surrogateshap.pipeline import run_attribution
from surrogateshap.report import load_attribution_document

# a smaller bank, fewer denoising steps and a smaller budget (the shipped estimator): well under a minute
REDUCED = {
    "plan.samples_per_contributor": 24,
    "generation.num_inference_steps": 10,
    "base.samples_per_contributor": 4,
    "estimator.budget": 96,
    "estimator.n_holdout": 16,
}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    mp = pytest.MonkeyPatch()
    mp.setenv("WANDB_MODE", "offline")
    mp.setenv("WANDB_SILENT", "true")
    try:
        run = run_demo(out, overrides=REDUCED, progress=False)
    finally:
        mp.undo()
    return out, run


def roles_at(document, utility: str, k: int, end: str = "top") -> tuple[set, list]:
    """The planted roles of the ``k`` largest (``top``) or smallest (``bottom``) values, and the ranking."""
    ids = [c["id"] for c in document["contributors"]]
    roles = {c["id"]: c["role"] for c in document["contributors"]}
    values = np.array(document["utilities"][utility]["values"])
    ranked = [ids[i] for i in np.argsort(-values, kind="stable")]
    chosen = ranked[:k] if end == "top" else ranked[-k:]
    return {roles[c] for c in chosen}, ranked


def test_marker_contributors_top_the_marker_rate(demo_run):
    found, ranked = roles_at(demo_run[1].document, "marker_rate", 2)
    assert found == {"marker"}, ranked[:5]


def test_corrupted_contributors_raise_fid_most(demo_run):
    found, ranked = roles_at(demo_run[1].document, "fid", 3)
    assert found == {"corrupted"}, ranked[:5]


def test_corrupted_contributors_lower_quality_most(demo_run):
    found, ranked = roles_at(demo_run[1].document, "quality", 3, "bottom")
    assert found == {"corrupted"}, ranked[-5:]


def test_attribution_json_validates_with_roles_and_efficiency(demo_run):
    out, run = demo_run
    document = load_attribution_document(out / "attribution.json")  # schema + lengths + efficiency
    assert set(document["utilities"]) == {"fid", "inception_score", "quality", "diversity", "marker_rate"}
    assert {c["role"] for c in document["contributors"]} == {"clean", "corrupted", "marker"}
    for name, utility in document["utilities"].items():
        total = sum(utility["values"])
        assert total == pytest.approx(utility["v_full"] - utility["v_empty"], rel=1e-9, abs=1e-9), name
        # v_empty is measured on the untrained network's bank, never a constant of the config
        assert utility["v_empty"] != utility["v_full"] or name == "marker_rate"
    assert document["utilities"]["fid"]["higher_is_better"] is False
    assert document["utilities"]["quality"]["higher_is_better"] is True
    assert len(pd.read_csv(out / "attribution.csv")) == 5 * 20


def test_plots_are_real_images(demo_run):
    out, _ = demo_run
    for name in ("values_fid.png", "interactions_quality.png", "surrogate_cv_marker_rate.png"):
        with Image.open(out / name) as image:
            pixels = np.asarray(image.convert("L"), dtype=float)
        assert min(pixels.shape) > 100 and pixels.std() > 5, name
    report = (out / "report.md").read_text()
    assert "values_fid.png" in report and "digit1_b" in report


def test_wandb_offline_run_holds_the_contributors_table(demo_run):
    out, run = demo_run
    tables = list(out.glob("wandb/offline-run-*/files/media/table/contributors_*.table.json"))
    assert len(tables) == 1, run.wandb_message
    table = json.loads(tables[0].read_text())
    assert {row[0] for row in table["data"]} == {c["id"] for c in run.document["contributors"]}


class _Killed(RuntimeError):
    pass


class _KillAfter(pl.Callback):
    """Raise after ``n`` predict batches, as a killed process would stop."""

    def __init__(self, n: int) -> None:
        self.n = n

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if batch_idx + 1 >= self.n:
            raise _Killed("killed")


def test_a_killed_demo_resumes_to_the_same_attribution(demo_run, tmp_path):
    reference_out, reference = demo_run
    config = load_config(default_config_path(), REDUCED)
    config["trainer"]["callbacks"] = [_KillAfter(2)]
    with pytest.raises(_Killed):
        run_attribution(config, tmp_path, progress=False, use_wandb=False)
    partial = ContributorBank.load(tmp_path / "bank")
    assert 0 < len(partial) < len(reference.bank)
    resumed = run_attribution(load_config(default_config_path(), REDUCED), tmp_path, progress=False, use_wandb=False)
    ContributorBank.load(tmp_path / "bank")  # no row twice (load refuses differing duplicates)
    assert len(resumed.bank) == len(reference.bank)
    for name in resumed.bank.array_names:
        np.testing.assert_array_equal(resumed.bank[name], reference.bank[name])
    for name, utility in resumed.document["utilities"].items():
        np.testing.assert_allclose(utility["values"], reference.document["utilities"][name]["values"], rtol=1e-12)


def test_cli_errors_are_one_line_with_the_fix(tmp_path, capsys):
    assert main(["attribute", "--config", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nope.yaml" in err and "does not exist" in err
    assert main(["demo", "--out", str(tmp_path / "o"), "--set", "estimator.budgett=3", "--no-wandb"]) == 2
    err = capsys.readouterr().err.strip()
    assert "estimator.budgett" in err and "Traceback" not in err
    assert main(["demo", "--out", str(tmp_path / "o"), "--set", "data.marker=[digit2_z]", "--no-wandb"]) == 2
    assert "digit2_z" in capsys.readouterr().err
    assert main(["demo", "--out", str(tmp_path / "o"), "--set", "plan.samples_per_contributor=0", "--no-wandb"]) == 2
    err = capsys.readouterr().err.strip()
    assert "get no samples" in err and "at least 1" in err and err.count("\n") == 0


def test_help_of_every_command_explains_its_options(capsys):
    for command in ("demo", "attribute", "estimate"):
        with pytest.raises(SystemExit) as done:
            main([command, "--help"])
        assert done.value.code == 0
        text = capsys.readouterr().out
        assert "--out" in text


def test_another_planting_trains_its_own_generator_once(tmp_path):
    config = load_config(default_config_path(), {"data.marker_corner": "bottom_right"})
    assert ensure_generator(load_config(default_config_path()), tmp_path) is None  # the shipped planting
    model = ensure_generator(config, tmp_path, max_steps=2, progress=False)
    assert model is not None and (model / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    record = json.loads((model / "training.json").read_text())
    assert record["data"]["planting"]["marker_corner"] == "bottom_right" and record["global_step"] == 2
    stamp = (model / "training.json").stat().st_mtime_ns
    assert ensure_generator(config, tmp_path, max_steps=2, progress=False) == model  # cached, not retrained
    assert (model / "training.json").stat().st_mtime_ns == stamp
    assert Path(model).parent == tmp_path / "models"


def test_report_from_the_run_folder_rebuilds_every_output_identically(demo_run, tmp_path):
    out, run = demo_run
    assert main(["report", "--from", str(out), "--out", str(tmp_path)]) == 0
    rebuilt = {p.name for p in tmp_path.iterdir()}
    assert rebuilt == set(run.paths) - {"membership.npz"}
    assert any(name.startswith("surrogate_cv_") for name in rebuilt)
    for name in rebuilt:
        if name.endswith(".png"):
            with Image.open(out / name) as a, Image.open(tmp_path / name) as b:
                assert np.array_equal(np.asarray(a), np.asarray(b)), name
        else:
            assert (out / name).read_bytes() == (tmp_path / name).read_bytes(), name
