import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from surrogateshap import sample_coalitions
from surrogateshap.cli import main
from surrogateshap.games import MoebiusGame
from surrogateshap.report import load_attribution_document


def test_help_runs_as_a_console_script():
    out = subprocess.run([sys.executable, "-m", "surrogateshap.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "estimate" in out.stdout


@pytest.mark.parametrize(("given", "expected"), [(None, "True"), ("0", "False")])
def test_the_command_keeps_the_hub_client_offline_unless_told_otherwise(given, expected):
    # a command's libraries import huggingface_hub after main() starts; it reads HF_HUB_OFFLINE on first import
    code = ("from surrogateshap.cli import main; main([]); "
            "import huggingface_hub.constants as c; print(c.HF_HUB_OFFLINE)")
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"} | ({"HF_HUB_OFFLINE": given} if given else {})
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and out.stdout.strip().splitlines()[-1] == expected


def test_estimate_from_csv_recovers_the_game(tmp_path):
    game = MoebiusGame.random(6, order=2, n_terms=4, seed=0)
    masks = sample_coalitions(6, 64, seed=0).masks
    frame = pd.DataFrame(masks.astype(int), columns=[f"c{i}" for i in range(6)])
    frame["value"] = game(masks)
    frame.to_csv(tmp_path / "values.csv", index=False)
    assert main(["estimate", "--values", str(tmp_path / "values.csv"), "--out", str(tmp_path / "o"),
                 "--std", "none", "--cv", "3"]) == 0
    data = load_attribution_document(tmp_path / "o" / "attribution.json")
    assert [c["id"] for c in data["contributors"]] == [f"c{i}" for i in range(6)]
    values = np.array(data["utilities"]["value"]["values"])
    assert np.corrcoef(values, game.shapley_values())[0, 1] > 0.95
    csv = pd.read_csv(tmp_path / "o" / "attribution.csv")
    assert len(csv) == 6 and set(csv["utility"]) == {"value"}
    assert (tmp_path / "o" / "values_value.png").stat().st_size > 1000


def test_estimate_without_the_full_coalition_is_a_clear_error(tmp_path, capsys):
    masks = sample_coalitions(4, 10, seed=0).masks[[0, 2, 3, 4]]
    frame = pd.DataFrame(masks.astype(int), columns=list("abcd"))
    frame["value"] = 1.0
    frame.to_csv(tmp_path / "v.csv", index=False)
    assert main(["estimate", "--values", str(tmp_path / "v.csv"), "--out", str(tmp_path / "o")]) == 2
    assert "full coalition" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("edit", "message"),
    [(lambda f: f.drop(columns="value"), "no 'value' column"), (lambda f: f.replace({"a": {1: 2}}), "is not 0 or 1")],
)
def test_estimate_rejects_a_malformed_values_file(tmp_path, capsys, edit, message):
    masks = sample_coalitions(4, 10, seed=0).masks
    frame = pd.DataFrame(masks.astype(int), columns=list("abcd"))
    frame["value"] = 1.0
    edit(frame).to_csv(tmp_path / "v.csv", index=False)
    assert main(["estimate", "--values", str(tmp_path / "v.csv"), "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
