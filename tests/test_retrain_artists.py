"""The artists retraining game: a LoRA fine-tuned from the base model on a coalition's pictures only, prompted with
the coalition's captions and scored like the proxy; the empty coalition is the base model (the proxy's v_empty)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import TINY

from surrogateshap.cli import main
from surrogateshap.config import load_config
from surrogateshap.examples.artists.demo import artists_sections, default_config_path
from surrogateshap.examples.artists.retrain import ARTISTS_RETRAINING
from surrogateshap.games.retraining import RESULTS_FILE, run_retraining
from surrogateshap.pipeline import run_attribution

pytestmark = pytest.mark.filterwarnings("ignore")
UTILITIES = ("quality", "fid", "diversity", "audit")
MEMBERS = ["artist03", "artist21"]  # artist21 shares its published name with artist22


@pytest.fixture(scope="module")
def retrained(tmp_path_factory):
    root = tmp_path_factory.mktemp("retrain_artists")
    config = load_config(default_config_path(), TINY, sections=artists_sections())
    ids = [f"artist{i:02d}" for i in range(40)]
    frame = pd.DataFrame(0, index=[0, 1], columns=ids)
    frame.loc[1, MEMBERS] = 1
    frame.insert(0, "coalition", ["empty", "pair"])
    frame.to_csv(root / "coalitions.csv", index=False)
    result = run_retraining(config, root / "coalitions.csv", root / "out", ARTISTS_RETRAINING, max_steps=2,
                            progress=False)
    return root, config, result


def test_every_coalition_gets_every_utility(retrained):
    _, _, frame = retrained
    assert list(frame["coalition"]) == ["empty", "pair"]
    for name in UTILITIES:
        assert np.isfinite(frame[name]).all(), name
    assert not any(c.endswith("_uncond") for c in frame.columns)  # no null-condition samples in this setting
    assert frame.loc[0, "train_seconds"] == 0.0 and frame.loc[1, "train_seconds"] > 0


def test_the_lora_is_trained_from_the_base_model_on_the_coalition_only(retrained):
    root, config, _ = retrained
    work = root / "out" / "coalitions" / "pair"
    record = json.loads((work / "model" / "training.json").read_text())
    assert record["data"]["contributors"] == MEMBERS and record["global_step"] == 2
    assert record["hparams"]["base_path"] == str(config["generation"]["backend"]["init_args"]["model_path"])
    assert (work / "model" / "pytorch_lora_weights.safetensors").is_file()
    from surrogateshap.bank import ContributorBank

    # the homonym alone in the coalition is its own unit: prompted with the shared name, its own pictures' seeds
    assert ContributorBank.load(work / "bank").contributor_ids == MEMBERS


def test_the_empty_coalition_is_the_proxys_v_empty(retrained, tmp_path):
    _, config, frame = retrained
    document = run_attribution(config, tmp_path, progress=False, use_wandb=False).document
    for name in UTILITIES:  # the same samples; FID's sums over d = 64 features in another order
        assert frame.loc[0, name] == pytest.approx(document["utilities"][name]["v_empty"], rel=1e-7), name


def test_the_cli_retrains_the_artists_setting(retrained, capsys):
    root, _, frame = retrained
    overrides = [arg for key, value in TINY.items() if not key.startswith("estimator")
                 for arg in ("--set", f"{key}={value}")]
    code = main(["retrain", "--setting", "artists", "--coalitions", str(root / "coalitions.csv"), "--out",
                 str(root / "out"), "--max-steps", "2", "--no-progress", *overrides])
    assert code == 0, capsys.readouterr().err
    assert "2 coalitions scored" in capsys.readouterr().out  # both finished already: nothing retrained
    pd.testing.assert_frame_equal(pd.read_csv(root / "out" / RESULTS_FILE, dtype={"coalition": str}), frame)
