"""benchmarks/validation_t2i.py on synthetic proxy results and retrain files (no generation, no retraining), and
the coalitions it asks to retrain."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import load_benchmark
from scipy.stats import pearsonr, spearmanr

N = 40
IDS = [f"artist{i:02d}" for i in range(N)]
UTILITIES = {"quality": True, "audit": True}
MARKER = 11


@pytest.fixture(scope="module")
def t2i():
    return load_benchmark("validation_t2i")


def _key(mask) -> str:
    return "".join("1" if v else "0" for v in mask)


def _truth(mask, u):
    m = np.asarray(mask, float)
    if u == "audit":  # the marker artist carries the correlation
        return 0.05 + 0.6 * m[MARKER] * m.sum() / N
    return 0.5 + float(m @ np.linspace(-1, 1, N)) / N + 0.01 * np.sin(m @ np.arange(N))


def _proxy(mask, u, variant):
    return 0.9 * _truth(mask, u) + (0.02 if variant == "shares" else 0.0) * np.cos(np.asarray(mask) @ np.arange(N))


def _setting(tmp_path):
    rng = np.random.default_rng(0)
    holdout = rng.random((24, N)) < 0.5
    shared = rng.random((12, N)) < 0.5
    named = [("empty", np.zeros(N, bool)), ("full", np.ones(N, bool)), ("no_marker", np.arange(N) != MARKER),
             *((f"holdout{i:02d}", m) for i, m in enumerate(holdout)),
             *((f"shared{i:02d}", m) for i, m in enumerate(shared))]
    proxy_values = {name: {"mask": _key(m), **{v: {u: _proxy(m, u, v) for u in UTILITIES} for v in ("soft", "shares")}}
                    for name, m in named}
    good = np.linspace(-1, 1, N)
    audit = np.where(np.arange(N) == MARKER, 0.5, 0.0)
    record = {"v_empty": 0.0, "n_evaluations": 64, "sum_sizes": 1280, "evaluation_seconds": 1.0, "fit_seconds": 2.0}
    methods = {"surrogateshap": {"64": {u: {**record, "values": (good / N if u == "quality" else audit).tolist(),
                                             "v_full": 1.0} for u in UTILITIES}},
               "kernelshap": {"64": {u: {**record, "values": (-good if u == "quality" else -audit).tolist(),
                                          "v_full": 1.0} for u in UTILITIES}}}
    results = {"contributor_ids": IDS, "higher_is_better": UTILITIES, "samples_per_contributor": 16,
               "bank_samples": 640, "base_samples": 320, "timings": {"generation": 60.0}, "bank_reused": False,
               "methods": methods, "roles": {c: ("marker" if i == MARKER else "clean") for i, c in enumerate(IDS)},
               "n_examples": dict.fromkeys(IDS, 48), "counterfactual": [], "proxy_values": proxy_values}

    def write(folder, rows, shift=0.0):
        frame = pd.DataFrame([{"coalition": name, **dict(zip(IDS, m.astype(int).tolist())),
                               **{u: _truth(m, u) + shift * np.sin(5 * m @ np.arange(N)) for u in UTILITIES},
                               "train_seconds": 480.0 * m.mean() if m.any() else 0.0, "generate_seconds": 20.0,
                               "score_seconds": 1.0} for name, m in rows])
        folder.mkdir(parents=True)
        frame.to_csv(folder / "retrain.csv", index=False)

    write(tmp_path / "retrain", named[:3 + 20])  # 4 of the 24 datamodel coalitions missing
    write(tmp_path / "retrain_shared", named[27:])
    write(tmp_path / "retrain_seed1", named[3:15], shift=0.01)
    write(tmp_path / "retrain_loo", [(f"loo_{c}", np.arange(N) != i) for i, c in enumerate(IDS)])
    paths = {"main": tmp_path / "retrain", "shared": tmp_path / "retrain_shared",
             "seed1": tmp_path / "retrain_seed1", "cf": tmp_path / "absent", "loo": tmp_path / "retrain_loo"}
    return results, named, paths


def test_the_report_computes_fidelity_ceiling_lds_and_audit_from_the_files(t2i, tmp_path):
    results, named, paths = _setting(tmp_path)
    report = t2i.build_report(results, paths)
    fidelity = report["fidelity"].set_index(["family", "variant", "utility"]).sort_index()
    holdout = [m for name, m in named[3:23]]
    for v in ("soft", "shares"):
        for u in UTILITIES:
            p = [_proxy(m, u, v) for m in holdout]
            r = [_truth(m, u) for m in holdout]
            row = fidelity.loc[("datamodel", v, u)]
            assert row["n"] == 20 and row["status"] == "PARTIAL (20 of 24)"
            assert row["spearman"] == pytest.approx(spearmanr(p, r).statistic)
            assert row["pearson"] == pytest.approx(pearsonr(p, r).statistic)
    assert (fidelity.loc["shared", "n"] == 12).all() and (fidelity.loc["shared", "status"] == "complete").all()
    ceiling = report["ceiling"].set_index("utility")
    assert (ceiling["n"] == 12).all() and ceiling.loc["quality", "spearman"] > 0.9
    seeded = [m for name, m in named[3:15]]  # holdout00..11, retrained with both seeds
    p = [_proxy(m, "quality", "soft") for m in seeded]
    seed1 = [_truth(m, "quality") + 0.01 * np.sin(5 * m @ np.arange(N)) for m in seeded]  # write(..., shift=0.01)
    assert ceiling.loc["quality", "proxy_seed1"] == pytest.approx(spearmanr(p, seed1).statistic)
    assert ceiling.loc["quality", "disattenuated"] == pytest.approx(
        fidelity.loc[("datamodel", "soft", "quality"), "spearman"] / np.sqrt(ceiling.loc["quality", "spearman"]))
    lds = report["lds"].set_index(["method", "utility"])
    assert lds.loc[("surrogateshap", "quality"), "lds"] > 0.9 > -0.9 > lds.loc[("kernelshap", "quality"), "lds"]
    # leave-one-out on the retraining game: full minus each artist's retrain, scored on the same coalitions
    full_mask = np.ones(N, bool)
    loo_values = np.array([_truth(full_mask, "quality") - _truth(np.arange(N) != i, "quality") for i in range(N)])
    predicted = _truth(np.zeros(N), "quality") + np.array(holdout, float) @ loo_values
    assert lds.loc[("retrain_loo", "quality"), "lds"] == pytest.approx(
        spearmanr(predicted, [_truth(m, "quality") for m in holdout]).statistic)
    audit = report["audit"].set_index("method")["marker_rank"]
    assert audit["surrogateshap"] == 1 and audit["kernelshap"] == N  # -audit: the marker artist is the smallest
    full = report["full"].set_index("utility")
    assert full.loc["quality", "relative_difference"] == pytest.approx(1 / 9)  # the proxy is 0.9 x the truth
    text = report["markdown"]
    assert "on 20 of 24 datamodel coalitions (PARTIAL)" in text
    full_audit, base_audit = _truth(named[1][1], "audit"), _truth(named[0][1], "audit")
    removed = (full_audit - _truth(named[2][1], "audit")) / (full_audit - base_audit)
    assert f"removes {removed:.3f} of the correlation the fine-tune added" in text
    assert "s per 1,000 steps" in text and "leave-one-out on the retraining game itself" in text
    # without the leave-one-out folder only no_marker (the marker artist's leave-one-out coalition) is there
    partial = t2i.build_report(results, {**paths, "loo": tmp_path / "no"})
    assert "`retrain_loo` MISSING: 1 of the 40" in partial["markdown"]
    assert "retrain_loo" not in set(partial["lds"]["method"])


def test_the_counterfactual_rows_compare_top_and_bottom_removals_with_the_proxy(t2i, tmp_path):
    results, named, paths = _setting(tmp_path)
    order = np.argsort(np.linspace(-1, 1, N))  # the quality weights: the top artists raise quality the most
    removals = {"top": order[-4:], "bottom": order[:4]}
    rows = []
    for which, removed in removals.items():
        mask = ~np.isin(np.arange(N), removed)
        name = f"cf_surrogateshap_quality_{which}"
        results["proxy_values"][name] = {"mask": _key(mask), **{v: {u: _proxy(mask, u, v) for u in UTILITIES}
                                                                for v in ("soft", "shares")}}
        results["counterfactual"].append({"coalition": name, "method": "surrogateshap", "budget": "64",
                                          "utility": "quality", "which": which, "mask": mask.tolist(),
                                          "removed": [IDS[i] for i in sorted(removed)]})
        rows.append({"coalition": name, **dict(zip(IDS, mask.astype(int).tolist())),
                     **{u: _truth(mask, u) for u in UTILITIES}, "train_seconds": 400.0, "generate_seconds": 20.0})
    (tmp_path / "retrain_cf").mkdir()
    pd.DataFrame(rows).to_csv(tmp_path / "retrain_cf" / "retrain.csv", index=False)
    report = t2i.build_report(results, {**paths, "cf": tmp_path / "retrain_cf"})
    full = np.ones(N, bool)
    change = {w: _truth(~np.isin(np.arange(N), r), "quality") - _truth(full, "quality") for w, r in removals.items()}
    cf = report["counterfactual"].set_index("which")
    assert cf.loc["top", "retrain_change"] == pytest.approx(change["top"]) and change["top"] < 0 < change["bottom"]
    assert cf.loc["bottom", "proxy_change"] == pytest.approx(0.9 * change["bottom"])  # the proxy is 0.9 x the truth
    (row,) = report["counterfactual_order"].to_dict("records")
    assert row["retrain"] == pytest.approx(change["top"] - change["bottom"]) and row["as_predicted"]
    assert "quality: same sign 2 of 2, Spearman n/a" in report["markdown"]  # Spearman needs 3 removals


def test_the_coalitions_are_datamodel_draws_and_the_shared_ones_hold_one_homonym(t2i, tmp_path):
    args = t2i.argparse.Namespace(out=tmp_path / "c.csv", shared_out=tmp_path / "s.csv", seed_out=tmp_path / "d.csv",
                                  cf_out=tmp_path / "cf.csv", loo_out=tmp_path / "loo.csv",
                                  results=tmp_path / "absent.json")
    t2i.run_coalitions(args)
    main = pd.read_csv(tmp_path / "c.csv").set_index("coalition")
    assert list(main.index[:3]) == ["empty", "full", "no_marker"] and len(main) == 27
    assert main.loc["no_marker"].sum() == N - 1 and main.loc["no_marker", "artist11"] == 0
    assert (main.filter(like="holdout", axis=0).sum(axis=1) == N // 2).all()
    shared = pd.read_csv(tmp_path / "s.csv").set_index("coalition")
    assert (shared["artist21"] + shared["artist22"] == 1).all() and shared["artist21"].sum() == 6
    seed = pd.read_csv(tmp_path / "d.csv").set_index("coalition")
    pd.testing.assert_frame_equal(seed, main.loc[[f"holdout{i:02d}" for i in range(12)]])
    assert not (tmp_path / "cf.csv").exists()
    loo = pd.read_csv(tmp_path / "loo.csv").set_index("coalition")
    assert list(loo.index) == [f"loo_{c}" for c in IDS] and (loo.sum(axis=1) == N - 1).all()
    committed = pd.read_csv("benchmarks/results/validation_t2i_coalitions.csv").set_index("coalition")
    pd.testing.assert_frame_equal(committed, main)  # the committed file is what the stage writes
    assert json.loads(json.dumps(list(main.columns))) == IDS


def test_the_report_commits_its_inputs_and_reports_from_them_without_out(t2i, tmp_path, monkeypatch):
    import shutil

    results, _, paths = _setting(tmp_path)
    (tmp_path / "proxy_results.json").write_text(json.dumps(results))
    monkeypatch.setattr(t2i, "RETRAIN", paths)
    args = t2i.argparse.Namespace(results=tmp_path / "proxy_results.json", out=tmp_path / "res" / "t2i.md")
    (tmp_path / "res").mkdir()
    first = t2i.run_report(args)["markdown"]
    assert sorted(p.name for p in (tmp_path / "res").glob("t2i_retrain_*.csv")) == [
        f"t2i_retrain_{k}.csv" for k in ("loo", "main", "seed1", "shared")]  # no cf retrains: no copy
    for folder in paths.values():
        shutil.rmtree(folder, ignore_errors=True)
    (tmp_path / "proxy_results.json").unlink()
    again = t2i.run_report(args)["markdown"]
    # the same report from the committed copies; only the list of files read names other paths
    def body(text):
        return [line for line in text.splitlines() if not line.startswith("- `")]

    assert body(again) == body(first) and "t2i_retrain_main.csv`: 23 rows" in again
