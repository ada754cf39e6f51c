"""The retraining game: a coalition's model trained from scratch on its data alone, scored like the proxy."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import TINY

from surrogateshap.cli import main
from surrogateshap.coalitions import read_coalitions
from surrogateshap.config import load_config
from surrogateshap.examples.digits.demo import default_config_path
from surrogateshap.examples.digits.retrain import DIGITS_RETRAINING
from surrogateshap.games.retraining import RESULTS_FILE, run_retraining
from surrogateshap.pipeline import run_attribution

UTILITIES = ("fid", "inception_score", "quality", "diversity", "marker_rate")


def write_coalitions(path, ids, rows):
    frame = pd.DataFrame(0, index=range(len(rows)), columns=ids)
    for i, members in enumerate(rows):
        frame.loc[i, members] = 1
    frame.insert(0, "coalition", [f"s{i}" for i in range(len(rows))])
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def retrained(tmp_path_factory):
    root = tmp_path_factory.mktemp("retrain")
    config = load_config(default_config_path(), TINY)
    ids = [f"digit{d}_{x}" for d in range(10) for x in "ab"]
    csv = write_coalitions(root / "coalitions.csv", ids, [[], ["digit0_a", "digit1_b", "digit2_a"]])
    frame = run_retraining(config, csv, root / "out", DIGITS_RETRAINING, max_steps=2, progress=False)
    return root, config, csv, frame


def test_every_coalition_gets_every_utility_conditional_and_unconditional(retrained):
    _, _, _, frame = retrained
    assert list(frame["coalition"]) == ["s0", "s1"]
    for name in UTILITIES:
        assert np.isfinite(frame[name]).all() and np.isfinite(frame[f"{name}_uncond"]).all()
    assert frame.loc[0, "train_seconds"] == 0.0 and frame.loc[1, "train_seconds"] > 0
    assert frame.loc[1, ["digit0_a", "digit1_b", "digit2_a"]].tolist() == [1, 1, 1]


def test_the_empty_coalition_is_the_proxys_v_empty(retrained, tmp_path):
    _, config, _, frame = retrained
    document = run_attribution(config, tmp_path, progress=False, use_wandb=False).document
    for name in UTILITIES:
        assert frame.loc[0, name] == pytest.approx(document["utilities"][name]["v_empty"], rel=1e-9), name


def test_a_rerun_skips_finished_coalitions(retrained):
    root, config, csv, frame = retrained
    model = root / "out" / "coalitions" / "s1" / "model" / "training.json"
    stamp = model.stat().st_mtime_ns
    again = run_retraining(config, csv, root / "out", DIGITS_RETRAINING, max_steps=2, progress=False)
    pd.testing.assert_frame_equal(again, frame)
    assert model.stat().st_mtime_ns == stamp
    assert len(pd.read_csv(root / "out" / RESULTS_FILE)) == 2


def test_another_training_seed_changes_the_retrain_and_needs_its_own_folder(retrained, tmp_path):
    root, config, csv, frame = retrained
    with pytest.raises(ValueError, match="holds retrains with settings"):
        run_retraining(config, csv, root / "out", DIGITS_RETRAINING, max_steps=2, train_seed=1, progress=False)
    only_s1 = tmp_path / "s1.csv"
    pd.read_csv(csv).iloc[[1]].to_csv(only_s1, index=False)
    seeded = run_retraining(config, only_s1, tmp_path / "seed1", DIGITS_RETRAINING, max_steps=2, train_seed=1,
                            progress=False)
    assert seeded.loc[0, "coalition"] == "s1"
    assert seeded.loc[0, "fid"] != pytest.approx(frame.loc[1, "fid"], rel=1e-6)
    assert json.loads((tmp_path / "seed1" / "retrain_settings.json").read_text()) == {"max_steps": 2, "train_seed": 1}


def test_parallel_workers_write_the_same_rows_in_file_order(retrained, tmp_path):
    _, config, csv, frame = retrained
    parallel = run_retraining(config, csv, tmp_path, DIGITS_RETRAINING, max_steps=2, progress=False, workers=2)
    assert list(parallel["coalition"]) == ["s0", "s1"]
    assert pd.read_csv(tmp_path / RESULTS_FILE)["coalition"].tolist() == ["s0", "s1"]
    for name in UTILITIES:  # same seeds whichever process trains a coalition
        assert parallel[name].tolist() == pytest.approx(frame[name].tolist(), rel=1e-4), name
    with pytest.raises(ValueError, match="workers must be an integer of at least 1"):
        run_retraining(config, csv, tmp_path, DIGITS_RETRAINING, workers=0)


def test_bad_coalition_files_are_clear_errors(tmp_path, capsys):
    pd.DataFrame({"digit0_a": [1, 0]}).to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(ValueError, match="digit0_b"):
        read_coalitions(tmp_path / "c.csv", ["digit0_a", "digit0_b"])
    assert main(["retrain", "--coalitions", str(tmp_path / "none.csv"), "--out", str(tmp_path / "o")]) == 2
    assert "none.csv" in capsys.readouterr().err


def test_shared_labels_retrain_on_the_digit_and_sample_per_unit(tmp_path):
    from surrogateshap.bank import ContributorBank

    config = load_config(default_config_path().with_name("digits_shared.yaml"), TINY)
    ids = [f"digit{d}_{x}" for d in range(10) for x in "ab"]
    csv = write_coalitions(tmp_path / "coalitions.csv", ids, [["digit1_a", "digit1_b", "digit3_b"]])
    frame = run_retraining(config, csv, tmp_path / "out", DIGITS_RETRAINING, max_steps=2, progress=False)
    assert np.isfinite(frame[list(UTILITIES)].to_numpy(dtype=float)).all()
    work = tmp_path / "out" / "coalitions" / "s0"
    # the model is conditioned on the ten digits; the twins of digit 1 share one unit of samples
    record = json.loads((work / "model" / "training.json").read_text())
    assert record["hparams"]["num_labels"] == 10 and record["data"]["planting"]["condition"] == "digit"
    bank = ContributorBank.load(work / "bank")
    assert bank.contributor_ids == ["label:1", "digit3_b"]
