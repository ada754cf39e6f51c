"""surrogateshap.report: the attribution document, its validation, output files and W&B logging."""

from __future__ import annotations

import copy
import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from surrogateshap import MoebiusGame, estimate
from surrogateshap.attribution import UtilityResult, attribution_document
from surrogateshap.cli import main
from surrogateshap.report import (
    load_attribution_document,
    log_scalars_to_logger,
    log_to_wandb,
    start_wandb_run,
    validate_attribution_document,
    write_outputs,
)

IDS = ["alice", "bob", "carol", "dave", "erin", "frank"]
ROLES = ["clean", "clean", "corrupted", "marker", "clean", None]
FAST = {"cv": 3, "n_bootstrap": 3, "param_grid": {"max_depth": [2], "learning_rate": [0.1], "n_estimators": [50]}}


def _contributors() -> list[dict]:
    out = []
    for k, (cid, role) in enumerate(zip(IDS, ROLES)):
        entry = {"id": cid, "n_examples": 10 * (k + 1)}
        if role is not None:
            entry["role"] = role
        out.append(entry)
    return out


@pytest.fixture(scope="module")
def results() -> list[UtilityResult]:
    fid_game = MoebiusGame.random(6, order=2, n_terms=5, seed=0)
    marker_game = MoebiusGame.random(6, order=3, n_terms=4, seed=1)
    fid = estimate(fid_game, "surrogateshap", budget=40, seed=0, **FAST)
    marker = estimate(marker_game, "surrogateshap", budget=40, seed=1, **FAST)
    aesthetic = estimate(MoebiusGame.random(6, order=2, n_terms=3, seed=2), "exact", interactions=True)
    for att in (fid, marker, aesthetic):
        att.players = list(IDS)
    return [
        UtilityResult("fid", fid, higher_is_better=False, lds=0.8, n_holdout=20),
        UtilityResult("marker_rate", marker, higher_is_better=False, lds=np.float64(np.nan)),
        UtilityResult("aesthetic", aesthetic, higher_is_better=True),
    ]


@pytest.fixture()
def doc(results) -> dict:
    return attribution_document(
        _contributors(), results, method="surrogateshap", budget=40, timings={"bank": 1.5, "estimate": np.float32(2)},
        extra={"seed": np.int64(0), "config": {"name": "toy"}},
    )


def test_document_matches_the_contract(doc, results):
    validate_attribution_document(doc)
    assert json.loads(json.dumps(doc, allow_nan=False)) == doc  # plain JSON, no NaN literals
    assert [c["id"] for c in doc["contributors"]] == IDS
    assert doc["contributors"][2]["role"] == "corrupted" and "role" not in doc["contributors"][5]
    assert set(doc) >= {"contributors", "utilities", "method", "budget", "n_coalitions", "timings", "seed", "config"}
    assert doc["n_coalitions"] == max(r.attribution.n_evaluations for r in results)
    fid = doc["utilities"]["fid"]
    att = results[0].attribution
    assert fid["values"] == pytest.approx(att.values.tolist())
    assert all(type(v) is float for v in fid["values"] + fid["std"])
    assert len(fid["interactions"]) == 6 and all(len(row) == 6 for row in fid["interactions"])
    assert fid["surrogate"]["holdout_r2"] == pytest.approx(att.surrogate.cv_r2_)
    assert fid["surrogate"]["holdout_spearman"] == pytest.approx(att.surrogate.cv_spearman_)
    # the out-of-fold fit of every held-out coalition (the anchors are never held out)
    held = np.isfinite(att.surrogate.cv_predictions_)
    assert fid["surrogate"]["out_of_fold"] == {"values": att.surrogate.train_values_[held].tolist(),
                                               "predictions": att.surrogate.cv_predictions_[held].tolist()}
    assert fid["higher_is_better"] is False and fid["lds"] == 0.8 and fid["n_holdout"] == 20
    assert abs(fid["efficiency_gap"]) < 1e-9
    assert doc["utilities"]["marker_rate"]["lds"] is None  # NaN -> null
    exact = doc["utilities"]["aesthetic"]
    assert exact["surrogate"] == {"holdout_r2": None, "holdout_spearman": None, "out_of_fold": None}
    assert exact["std"] is None
    assert doc["timings"] == {"bank": 1.5, "estimate": 2.0} and type(doc["seed"]) is int


def test_players_must_match_contributors(results):
    shuffled = copy.copy(results[0].attribution)
    shuffled.players = IDS[::-1]
    with pytest.raises(ValueError, match="do not match the contributor ids.*position 0: player 'frank'"):
        attribution_document(_contributors(), [UtilityResult("fid", shuffled, False)], method="m", budget=1,
                             timings={})
    unnamed = copy.copy(results[0].attribution)
    unnamed.players = None
    with pytest.raises(ValueError, match="no player names"):
        attribution_document(_contributors(), [UtilityResult("fid", unnamed, False)], method="m", budget=1,
                             timings={})
    with pytest.raises(ValueError, match="would overwrite"):
        attribution_document(_contributors(), results, method="m", budget=1, timings={}, extra={"method": "x"})
    with pytest.raises(ValueError, match="lacks key"):
        attribution_document([{"id": c} for c in IDS], results, method="m", budget=1, timings={})


@pytest.mark.parametrize(
    "breakage, expected",
    [
        (lambda d: d["utilities"]["fid"]["values"].pop(), r"utilities\.fid\.values: 5 entries for 6 contributors"),
        (lambda d: d["utilities"]["fid"]["std"].append(0.1), r"utilities\.fid\.std: 7 entries"),
        (lambda d: d["utilities"]["fid"]["interactions"][2].pop(), r"utilities\.fid\.interactions: must be 6 x 6"),
        (lambda d: d.pop("n_coalitions"), r"'n_coalitions' is a required property"),
        (lambda d: d["utilities"]["marker_rate"].pop("v_full"), r"utilities\.marker_rate: 'v_full' is a required"),
        (lambda d: d["contributors"][0].update(n_examples="many"), r"contributors\[0\]\.n_examples: 'many'"),
        (lambda d: d["contributors"][1].update(role=3), r"contributors\[1\]\.role: 3 is not of type 'string'"),
        (lambda d: d["utilities"]["aesthetic"].update(v_full=d["utilities"]["aesthetic"]["v_full"] + 1.0),
         r"utilities\.aesthetic: efficiency violated"),
    ],
)
def test_broken_documents_are_rejected(doc, breakage, expected):
    broken = copy.deepcopy(doc)
    breakage(broken)
    with pytest.raises(ValueError, match=expected):
        validate_attribution_document(broken)


def test_every_problem_is_listed(doc):
    broken = copy.deepcopy(doc)
    broken.pop("timings")
    broken["utilities"]["fid"]["values"][0] += 1.0
    broken["utilities"]["marker_rate"]["std"] = [0.0]
    with pytest.raises(ValueError) as info:
        validate_attribution_document(broken)
    message = str(info.value)
    assert "3 problem(s)" in message or "4 problem(s)" in message
    assert "'timings' is a required property" in message
    assert "utilities.fid: efficiency violated" in message
    assert "utilities.marker_rate.std: 1 entries" in message


def test_loo_documents_need_not_be_efficient(results):
    loo = estimate(MoebiusGame.random(6, order=3, n_terms=6, seed=3), "loo")
    loo.players = list(IDS)
    doc = attribution_document(_contributors(), [UtilityResult("u", loo, True)], method="loo", budget=None,
                               timings={})
    validate_attribution_document(doc)


def _no_temporaries(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]


def test_write_outputs(tmp_path, doc):
    paths = write_outputs(tmp_path / "out", doc)
    out = tmp_path / "out"
    expected = {"attribution.json", "attribution.csv", "report.md"}
    for stem in ("fid", "marker_rate", "aesthetic"):
        expected |= {f"values_{stem}.png", f"interactions_{stem}.png"}
    expected |= {"surrogate_cv_fid.png", "surrogate_cv_marker_rate.png"}  # the exact method has no surrogate
    assert set(paths) == expected
    assert {p.name for p in out.iterdir()} == expected
    assert all(paths[name] == out / name for name in expected)
    assert _no_temporaries(out) == []

    assert load_attribution_document(paths["attribution.json"]) == doc

    for name in expected:
        if name.endswith(".png"):
            with Image.open(paths[name]) as image:
                pixels = np.asarray(image.convert("L"), dtype=np.float64)
            assert pixels.shape[0] > 100 and pixels.shape[1] > 100, name
            assert pixels.std() > 0, name

    with paths["attribution.csv"].open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(IDS) * len(doc["utilities"])
    assert list(rows[0]) == ["utility", "contributor", "role", "n_examples", "value", "std", "rank",
                             "higher_is_better"]
    for utility, util in doc["utilities"].items():
        mine = [r for r in rows if r["utility"] == utility]
        assert [r["contributor"] for r in mine] == IDS
        values = [float(r["value"]) for r in mine]
        assert values == pytest.approx(util["values"])
        by_rank = sorted(mine, key=lambda r: int(r["rank"]))
        assert int(by_rank[0]["rank"]) == 1
        assert [float(r["value"]) for r in by_rank] == sorted(values, reverse=True)
        assert {r["higher_is_better"] for r in mine} == {"true" if util["higher_is_better"] else "false"}
    assert [r["role"] for r in rows[:6]] == ["clean", "clean", "corrupted", "marker", "clean", ""]

    report = paths["report.md"].read_text()
    assert "](values_fid.png)" in report and "](surrogate_cv_fid.png)" in report
    assert "## Timings" in report and "| bank | 1.5 |" in report
    assert "LDS = 0.8 on 20 held-out coalitions" in report
    top = IDS[int(np.argmax(doc["utilities"]["fid"]["values"]))]
    fid_table = report.split("## `fid`")[1].split("## ")[0]
    assert f"| 1 | {top} |" in fid_table

    import matplotlib.pyplot as plt  # the writers must not leave pyplot figures behind

    assert plt.get_fignums() == []


def test_write_outputs_refuses_invalid_documents(tmp_path, doc):
    broken = copy.deepcopy(doc)
    broken["utilities"]["fid"]["values"].pop()
    with pytest.raises(ValueError, match="5 entries for 6"):
        write_outputs(tmp_path, broken)
    assert list(tmp_path.iterdir()) == []


def test_scalars_to_a_lightning_logger(doc):
    class Recorder:
        def __init__(self):
            self.calls = []

        def log_metrics(self, metrics, step=None):
            self.calls.append((metrics, step))

    logger = Recorder()
    metrics = log_scalars_to_logger(logger, doc, step=3)
    assert logger.calls == [(metrics, 3)]
    assert metrics["fid/lds"] == 0.8
    assert metrics["fid/surrogate_r2"] == pytest.approx(doc["utilities"]["fid"]["surrogate"]["holdout_r2"])
    assert metrics["aesthetic/v_full"] == doc["utilities"]["aesthetic"]["v_full"]
    assert metrics["timings/bank"] == 1.5
    assert "marker_rate/lds" not in metrics and "aesthetic/surrogate_r2" not in metrics
    assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())


@pytest.fixture()
def offline_wandb(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb_home" / var.lower()))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)


def test_wandb_offline_run(offline_wandb, tmp_path, doc, results):
    paths = write_outputs(tmp_path, doc)

    class FakeWandbLogger:  # what log_to_wandb needs of lightning's WandbLogger
        def __init__(self, run):
            self.experiment = run

        def log_metrics(self, metrics, step=None):
            raise AssertionError("log_to_wandb must log through the run")

    run, message = start_wandb_run(tmp_path, name="test", config={"budget": 40})
    assert run is not None, message
    assert "offline" in message
    try:
        logged = log_to_wandb(FakeWandbLogger(run), doc, paths)
    finally:
        run.finish()
    assert {"contributors", "values/fid", "plots/values_fid", "plots/surrogate_cv_fid", "fid/lds",
            "timings/bank"} <= set(logged)
    run_dirs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(run_dirs) == 1
    tables = list(run_dirs[0].glob("files/media/table/contributors_*.table.json"))
    assert len(tables) == 1
    table = json.loads(tables[0].read_text())
    assert table["columns"][:3] == ["contributor", "role", "n_examples"]
    assert "fid_value" in table["columns"] and "aesthetic_std" in table["columns"]
    assert [row[0] for row in table["data"]] == IDS
    assert list(run_dirs[0].glob("files/media/images/plots/values_fid_*.png"))


def test_wandb_failure_is_reported_not_raised(offline_wandb, monkeypatch, tmp_path):
    import wandb

    def broken_init(*args, **kwargs):
        raise RuntimeError("no service")

    monkeypatch.setattr(wandb, "init", broken_init)
    run, message = start_wandb_run(tmp_path / "out")
    assert run is None
    assert message.startswith("W&B could not start: RuntimeError: no service")
    assert str(tmp_path / "out") in message


def test_shared_units_reach_the_report_and_wandb(offline_wandb, tmp_path, results):
    from surrogateshap.report.document import shared_unit_rows

    def unit(name, holders, loss, acc, fallback):
        return {"unit": name, "holders": holders, "n": sum(holders.values()), "log_loss": loss,
                "prior_log_loss": 0.69, "accuracy": acc, "prior_accuracy": 0.5, "fallback": fallback}

    membership = {"kind": "soft", "calibration": "temperature", "n_units": 4, "fallback_units": ["label:1"],
                  "shared_units": [
        unit("label:0", {"alice": 5, "bob": 7}, 0.1, 0.95, False),
        unit("label:1", {"carol": 4, "dave": 4}, 0.8, 0.5, True),
    ]}
    doc = attribution_document(_contributors(), results, method="surrogateshap", budget=40, timings={},
                               extra={"membership": membership})
    validate_attribution_document(doc)
    assert shared_unit_rows(doc) == [["label:0", "alice (5), bob (7)", 0.1, 0.69, 0.95, 0.5, False],
                                     ["label:1", "carol (4), dave (4)", 0.8, 0.69, 0.5, 0.5, True]]
    paths = write_outputs(tmp_path, doc)
    report = paths["report.md"].read_text()
    assert "| label:1 | carol (4), dave (4) |" in report and report.count("| yes |") == 1
    assert "from a classifier (temperature-calibrated) with the held-out" in report
    run, message = start_wandb_run(tmp_path, name="soft")
    assert run is not None, message
    try:
        logged = log_to_wandb(run, doc, paths)
    finally:
        run.finish()
    assert "shared_units" in logged
    (table,) = (tmp_path / "wandb").glob("offline-run-*/files/media/table/shared_units_*.table.json")
    data = json.loads(table.read_text())
    assert data["columns"][:2] == ["unit", "holders"] and [row[0] for row in data["data"]] == ["label:0", "label:1"]


def _same_outputs(first: Path, second: Path, names) -> None:
    """Text files byte-identical, PNGs pixel-identical."""
    for name in names:
        a, b = first / name, second / name
        if name.endswith(".png"):
            with Image.open(a) as x, Image.open(b) as y:
                assert x.size == y.size and np.array_equal(np.asarray(x), np.asarray(y)), name
        else:
            assert a.read_bytes() == b.read_bytes(), name


def test_report_from_a_run_folder_rebuilds_every_file(tmp_path, doc, capsys):
    paths = write_outputs(tmp_path / "run", doc)
    assert main(["report", "--from", str(tmp_path / "run"), "--out", str(tmp_path / "again")]) == 0
    assert {p.name for p in (tmp_path / "again").iterdir()} == set(paths)
    _same_outputs(tmp_path / "run", tmp_path / "again", paths)
    assert "surrogate_cv_fid.png" in paths  # the surrogate's out-of-fold fit comes from the document
    # after editing a role in attribution.json, rebuilding in place updates the table, plots and report
    edited = json.loads((tmp_path / "run" / "attribution.json").read_text())
    edited["contributors"][0]["role"] = "marker"
    (tmp_path / "run" / "attribution.json").write_text(json.dumps(edited))
    assert main(["report", "--from", str(tmp_path / "run")]) == 0
    rows = list(csv.DictReader((tmp_path / "run" / "attribution.csv").open(newline="")))
    assert rows[0]["contributor"] == IDS[0] and rows[0]["role"] == "marker"
    assert "| marker |" in (tmp_path / "run" / "report.md").read_text().split("## `fid`")[1].split("\n\n")[2]
    capsys.readouterr()
    assert main(["report", "--from", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert "has no attribution.json" in err and err.count("\n") == 0


def test_outputs_stay_readable_at_many_contributors(tmp_path):
    from surrogateshap.estimators import Attribution
    from surrogateshap.report import plots

    n = 300
    rng = np.random.default_rng(0)
    values = rng.normal(size=n)
    inter = rng.normal(size=(n, n)) * 0.01
    inter = (inter + inter.T) / 2
    np.fill_diagonal(inter, values)
    ids = [f"artist{i:03d}" for i in range(n)]
    att = Attribution(values, 0.0, float(values.sum()), "exact", 0, std=np.full(n, 0.1), interactions=inter,
                      players=ids)
    contributors = [{"id": c, "n_examples": 5, "role": "marker" if i == 7 else "clean"} for i, c in enumerate(ids)]
    doc = attribution_document(contributors, [UtilityResult("aesthetic", att, True)], method="exact", budget=None,
                               timings={})
    fig = plots.values_figure(doc, "aesthetic")
    bars, histogram = fig.axes[:2]
    assert len(bars.patches) == 2 * plots.TOP_K and "of 300 values" in bars.get_title()
    assert histogram.get_title() == "all 300 values"
    shown = [t.get_text() for t in bars.get_yticklabels()]
    order = np.argsort(values)
    assert set(shown) == {ids[i] for i in np.concatenate([order[: plots.TOP_K], order[-plots.TOP_K:]])}
    heat = plots.interactions_figure(doc, "aesthetic").axes[0]
    assert heat.get_images()[0].get_array().shape == (2 * plots.TOP_K, 2 * plots.TOP_K)
    paths = write_outputs(tmp_path, doc)
    table = paths["report.md"].read_text().split("| rank |")[1]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 2 * 25 + 1 and "... 250 more in attribution.csv" in table
    assert len(paths["attribution.csv"].read_text().splitlines()) == n + 1  # the CSV keeps everyone
