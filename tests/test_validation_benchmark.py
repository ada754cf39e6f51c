"""benchmarks/validation.py on synthetic proxy results and retrain files (no generation, no retraining)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import load_benchmark
from scipy.stats import pearsonr, spearmanr

IDS = [f"digit{d}_{s}" for d in range(10) for s in "ab"]
N = len(IDS)
UTILITIES = {"fid": False, "quality": True}


@pytest.fixture(scope="module")
def validation():
    return load_benchmark("validation")


def _key(mask) -> str:
    return "".join("1" if v else "0" for v in mask)


def _setting():
    """Known holdout masks, proxy values, attributions and a ground-truth retrain function."""
    rng = np.random.default_rng(3)
    holdout = rng.random((24, N)) < 0.5
    truth = {u: rng.normal(size=N) for u in UTILITIES}
    offset = {"fid": 40.0, "quality": 0.2}

    def retrain(mask, u):
        return offset[u] + float(np.asarray(mask, float) @ truth[u]) + 0.3 * np.sin(7 * np.asarray(mask) @ np.arange(N))

    def proxy(mask, u):
        m = np.asarray(mask)
        return offset[u] + float(m.astype(float) @ truth[u]) * 0.8 + 0.5 * np.cos(m @ np.arange(N))

    sims = rng.random(N)
    methods = {
        "surrogateshap": {"256": {}, "64": {}},
        "kernelshap": {"256": {}},
        "similarity": {"none": {}},
    }
    for u in UTILITIES:
        ss = truth[u] + 0.2 * rng.normal(size=N)
        for method, budget, values, n_eval, sum_sizes in [
            ("surrogateshap", "256", ss, 256, 2560), ("surrogateshap", "64", truth[u] + rng.normal(size=N), 64, 640),
            ("kernelshap", "256", ss if u == "fid" else -ss, 256, 2600), ("similarity", "none", sims, 0, 0),
        ]:
            methods[method][budget][u] = {
                "values": values.tolist(), "v_empty": 0.0, "v_full": float(values.sum()), "n_evaluations": n_eval,
                "sum_sizes": sum_sizes, "evaluation_seconds": 1.5, "fit_seconds": 2.0,
                **({"shared_seconds": True} if method == "similarity" else {}),
            }
    proxy_values = {"empty": {"mask": "0" * N, **{u: 0.0 for u in UTILITIES}},
                    "full": {"mask": "1" * N, **{u: proxy(np.ones(N), u) for u in UTILITIES}}}
    for i, m in enumerate(holdout):
        proxy_values[f"holdout{i:02d}"] = {"mask": _key(m), **{u: proxy(m, u) for u in UTILITIES}}
    results = {
        "config": "configs/digits.yaml", "contributor_ids": IDS, "higher_is_better": UTILITIES,
        "samples_per_contributor": 64, "bank_samples": 64 * N, "bank_reused": False,
        "timings": {"generation": 100.0, "base_generation": 5.0}, "fresh_generation_seconds": 100.0,
        "methods": methods, "proxy_values": proxy_values,
    }
    return results, holdout, retrain, proxy


def _retrain_csv(path: Path, named_masks, retrain) -> None:
    rows = []
    for name, mask in named_masks:
        row = {"coalition": name, **dict(zip(IDS, np.asarray(mask).astype(int).tolist()))}
        for u in UTILITIES:
            row[u] = retrain(mask, u)
            row[f"{u}_uncond"] = retrain(mask, u) + 1.0 * np.asarray(mask)[0]
        row.update(train_seconds=10.0 if np.any(mask) else 0.0, generate_seconds=2.0, score_seconds=1.0)
        rows.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)


def test_parser_accepts_proxy_options(validation):
    args = validation.build_parser().parse_args(
        ["proxy", "--config", "c.yaml", "--set", "a=1", "--set", "b.c=2", "--budgets", "64", "128"])
    assert args.stage == "proxy" and args.config == "c.yaml" and args.overrides == ["a=1", "b.c=2"]
    assert args.budgets == [64, 128] and args.seed == 0
    defaults = validation.build_parser().parse_args(["proxy"])
    assert defaults.budgets == [64, 128, 256, 512]
    assert defaults.proxy_dir == str(Path("out/validation/proxy"))
    assert validation.build_parser().parse_args(["report", "--retrain", "a", "b"]).retrain == ["a", "b"]


def test_report_partial_fidelity_and_lds(validation, tmp_path):
    results, holdout, retrain, proxy = _setting()
    (tmp_path / "proxy_results.json").write_text(json.dumps(results))
    present = list(range(20))  # 4 of 24 holdouts missing
    _retrain_csv(tmp_path / "r1" / "retrain.csv",
                 [("empty", np.zeros(N, bool)), ("full", np.ones(N, bool))]
                 + [(f"holdout{i:02d}", holdout[i]) for i in present], retrain)
    out = tmp_path / "validation.md"
    report = validation.main(["report", "--results", str(tmp_path / "proxy_results.json"),
                              "--retrain", str(tmp_path / "r1"), str(tmp_path / "absent"), "--out", str(out)])
    text = out.read_text()
    masks = holdout[present]
    fidelity = pd.read_csv(tmp_path / "validation_fidelity.csv").set_index("utility")
    for u in UTILITIES:
        p = np.array([proxy(m, u) for m in masks])
        r = np.array([retrain(m, u) for m in masks])
        ru = np.array([retrain(m, u) + float(m[0]) for m in masks])
        assert fidelity.loc[u, "n"] == 20
        assert fidelity.loc[u, "spearman"] == pytest.approx(spearmanr(p, r).statistic)
        assert fidelity.loc[u, "pearson"] == pytest.approx(pearsonr(p, r).statistic)
        assert fidelity.loc[u, "spearman_uncond"] == pytest.approx(spearmanr(p, ru).statistic)
        assert fidelity.loc[u, "status"] == "PARTIAL (20 of 24)"
    assert "20 of 24 holdout coalitions (PARTIAL)" in text
    lds = pd.read_csv(tmp_path / "validation_lds.csv", dtype={"budget": str})
    for method, budget in [("surrogateshap", "256"), ("surrogateshap", "64"), ("kernelshap", "256"),
                           ("similarity", "none")]:
        for u in UTILITIES:
            phi = np.array(results["methods"][method][budget][u]["values"])
            expected = spearmanr(masks @ phi, [retrain(m, u) for m in masks]).statistic
            row = lds[(lds.method == method) & (lds.budget == budget) & (lds.utility == u)]
            assert row["lds"].iloc[0] == pytest.approx(expected)
            assert row["n"].iloc[0] == 20
    assert "retrain_loo` MISSING (retrain LOO: 0 of 20" in text
    assert "`" + str(tmp_path / "absent" / "retrain.csv") + "`: not present" in text
    # no counterfactual retrains: none shown, all marked as not retrained
    assert len(report["counterfactual"]) == 0 and "(PARTIAL)" in text.split("## Counterfactual")[1]
    # cost: ratio = sum of sizes x m / bank samples; retrain mean over the 21 non-empty rows = 13 s
    regen = report["regeneration"].set_index("utility")
    assert regen.loc["fid", "images"] == 2560 * 64
    assert regen.loc["fid", "ratio"] == pytest.approx(2560 * 64 / (64 * N))
    assert regen.loc["fid", "regenerate_seconds"] == pytest.approx(2560 * 64 * 100.0 / (64 * N))
    cost = report["cost"].set_index(["method", "budget"])
    assert cost.loc[("surrogateshap", "256"), "evaluation_seconds"] == pytest.approx(3.0)  # summed over utilities
    assert cost.loc[("similarity", "none"), "evaluation_seconds"] == pytest.approx(1.5)  # one shared computation
    assert "13.0 s per non-empty coalition, over 21 retrained non-empty coalitions" in text


def test_report_with_loo_and_counterfactual(validation, tmp_path):
    results, holdout, retrain, _ = _setting()
    results_path = tmp_path / "proxy_results.json"
    results_path.write_text(json.dumps(results))
    _retrain_csv(tmp_path / "r" / "retrain.csv", [("empty", np.zeros(N, bool)), ("full", np.ones(N, bool))]
                 + [(f"holdout{i:02d}", m) for i, m in enumerate(holdout)], retrain)
    loo = ~np.eye(N, dtype=bool)
    _retrain_csv(tmp_path / "loo" / "retrain.csv", [(f"loo_{c}", m) for c, m in zip(IDS, loo)], retrain)
    # counterfactual coalitions file from the proxy results
    source = tmp_path / "coalitions.csv"
    pd.DataFrame([["full", *[1] * N]], columns=["coalition", *IDS]).to_csv(source, index=False)
    validation.main(["coalitions", "--coalitions", str(source),
                     "--results", str(results_path), "--loo-out", str(tmp_path / "loo.csv"),
                     "--cf-out", str(tmp_path / "cf.csv")])
    cf = pd.read_csv(tmp_path / "cf.csv")
    _retrain_csv(tmp_path / "cf" / "retrain.csv",
                 [(name, cf.loc[cf.coalition == name, IDS].to_numpy()[0].astype(bool)) for name in cf.coalition[:3]],
                 retrain)
    report = validation.main(["report", "--results", str(results_path), "--out", str(tmp_path / "v.md"),
                              "--retrain", str(tmp_path / "r"), str(tmp_path / "loo"), str(tmp_path / "cf")])
    text = (tmp_path / "v.md").read_text()
    assert "PARTIAL (" not in text.split("## Counterfactual")[0]  # all 24 holdouts and all LOO rows present
    lds = report["lds"]
    for u in UTILITIES:
        phi = np.array([retrain(np.ones(N), u) - retrain(m, u) for m in loo])
        expected = spearmanr(holdout @ phi, [retrain(m, u) for m in holdout]).statistic
        row = lds[(lds.method == "retrain_loo") & (lds.utility == u)]
        assert row["lds"].iloc[0] == pytest.approx(expected) and row["n"].iloc[0] == 24
    shown = report["counterfactual"]
    assert 3 <= len(shown) < 2 * 3 * len(UTILITIES) + 1
    for r in shown.to_dict("records"):
        removed = r["removed"].split()
        mask = np.array([c not in removed for c in IDS])
        assert r["retrain_change"] == pytest.approx(retrain(mask, r["utility"]) - retrain(np.ones(N), r["utility"]))
    assert "Not retrained" in text and "retrained (PARTIAL)" in text


def test_counterfactual_coalitions(validation, tmp_path):
    results, *_ = _setting()
    results_path = tmp_path / "proxy_results.json"
    results_path.write_text(json.dumps(results))
    source = tmp_path / "coalitions.csv"
    pd.DataFrame([["full", *[1] * N]], columns=["coalition", *IDS]).to_csv(source, index=False)
    validation.main(["coalitions", "--coalitions", str(source), "--results", str(results_path),
                     "--loo-out", str(tmp_path / "loo.csv"), "--cf-out", str(tmp_path / "cf.csv")])
    loo = pd.read_csv(tmp_path / "loo.csv")
    assert list(loo.coalition) == [f"loo_{c}" for c in IDS]
    assert (loo[IDS].to_numpy() == 1 - np.eye(N, dtype=int)).all()
    cf = pd.read_csv(tmp_path / "cf.csv").set_index("coalition")
    mapping = json.loads((tmp_path / "cf.json").read_text())["rows"]
    # budget 256 estimators and similarity, 2 utilities, top and bottom
    assert len(mapping) == 3 * 2 * 2
    for method, budget in [("surrogateshap", "256"), ("kernelshap", "256"), ("similarity", "none")]:
        for u in UTILITIES:
            values = np.array(results["methods"][method][budget][u]["values"])
            for which, chosen in (("top", np.argsort(-values)[:2]), ("bottom", np.argsort(values)[:2])):
                name = f"cf_{method}_{u}_{which}"
                row = cf.loc[mapping[name], IDS].to_numpy()
                assert sorted(np.flatnonzero(row == 0).tolist()) == sorted(chosen.tolist())
    # kernelshap's fid values equal surrogateshap's; similarity is one vector for both utilities
    assert mapping["cf_kernelshap_fid_top"] == "cf_surrogateshap_fid_top"
    assert mapping["cf_similarity_quality_bottom"] == "cf_similarity_fid_bottom"
    # kernelshap's quality values are negated surrogateshap's: its top is surrogateshap's bottom
    assert mapping["cf_kernelshap_quality_top"] == "cf_surrogateshap_quality_bottom"
    assert len(cf) == len(set(mapping.values())) == 12 - 6
    assert not cf.reset_index()[IDS].duplicated().any()


def test_coalitions_without_proxy_results_writes_loo_only(validation, tmp_path):
    source = tmp_path / "coalitions.csv"
    pd.DataFrame([["full", *[1] * N]], columns=["coalition", *IDS]).to_csv(source, index=False)
    written = validation.main(["coalitions", "--coalitions", str(source), "--results", str(tmp_path / "none.json"),
                               "--loo-out", str(tmp_path / "loo.csv"), "--cf-out", str(tmp_path / "cf.csv")])
    assert set(written) == {"loo"} and not (tmp_path / "cf.csv").exists()
