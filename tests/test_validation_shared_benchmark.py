"""benchmarks/validation_shared.py on synthetic proxy results and retrain rows (no generation, no retraining)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import load_benchmark
from scipy.stats import pearsonr, spearmanr

IDS = [f"digit{d}_{s}" for d in range(10) for s in "ab"]


@pytest.fixture(scope="module")
def shared():
    return load_benchmark("validation_shared")


def test_one_twin_coalitions_hold_exactly_one_twin_per_digit(shared):
    masks = shared.one_twin_masks(10, 24, seed=0)
    assert masks.shape == (24, 20) and len({m.tobytes() for m in masks}) == 24
    np.testing.assert_array_equal(masks.reshape(24, 10, 2).sum(axis=2), 1)


def _setting(shared, n_done: int):
    rng = np.random.default_rng(0)
    one, dm = shared.one_twin_masks(10, 6, 1), rng.random((6, 20)) < 0.5
    names = [f"one{i:02d}" for i in range(6)] + [f"dm{i:02d}" for i in range(6)]
    masks = np.concatenate([one, dm])
    phi = {"soft": rng.normal(size=20), "shares": rng.normal(size=20)}
    truth = masks @ phi["soft"] + 0.1 * rng.normal(size=12)
    proxy = {"contributor_ids": IDS, "kinds": {
        kind: {"attributions": {"fid": phi[kind].tolist()},
               "proxy_values": {"fid": dict(zip(names, (masks @ phi[kind] + rng.normal(size=12)).tolist()))}}
        for kind in ("soft", "shares")
    }}
    keep = list(range(n_done)) + list(range(6, 6 + n_done))
    retrain = pd.DataFrame(masks[keep].astype(int), columns=IDS)
    retrain.insert(0, "coalition", [names[i] for i in keep])
    retrain["fid"] = truth[keep]
    return proxy, retrain, names, masks, truth, phi


def test_report_correlations_and_lds_match_scipy_on_each_family(shared):
    proxy, retrain, names, masks, truth, phi = _setting(shared, 6)
    report = shared.build_report(proxy, retrain, {"one": 6, "dm": 6})
    fid = report["fidelity"].set_index(["coalitions", "proxy"])
    values = proxy["kinds"]["shares"]["proxy_values"]["fid"]
    x = [values[n] for n in names[:6]]
    assert fid.loc[("one twin per digit", "shares"), "spearman"] == pytest.approx(spearmanr(x, truth[:6]).statistic)
    x = [values[n] for n in names]
    assert fid.loc[("both", "shares"), "pearson"] == pytest.approx(pearsonr(x, truth).statistic)
    lds = report["lds"].set_index("proxy")
    assert lds.loc["soft", "lds"] == pytest.approx(spearmanr(masks[6:] @ phi["soft"], truth[6:]).statistic)
    assert lds.loc["soft", "lds"] > 0.9 and "PARTIAL" not in report["markdown"]


def test_report_marks_missing_retrains_partial(shared):
    proxy, retrain, *_ = _setting(shared, 4)
    report = shared.build_report(proxy, retrain, {"one": 6, "dm": 6})
    assert "PARTIAL" in report["markdown"] and "| 4 / 6 |" in report["markdown"]


def test_a_second_training_seed_is_reported_as_the_ground_truths_self_agreement(shared):
    proxy, retrain, names, masks, truth, _ = _setting(shared, 6)
    again = retrain.iloc[[0, 1, 2, 3, 6, 7]].copy()
    again["fid"] = again["fid"] + np.random.default_rng(5).normal(scale=0.5, size=6)
    report = shared.build_report(proxy, retrain, {"one": 6, "dm": 6}, {"retrain seed 1": again})
    row = report["fidelity"].set_index(["coalitions", "proxy"]).loc[("both", "retrain seed 1")]
    assert (row["n"], row["planned"]) == (6, 12)
    assert row["spearman"] == pytest.approx(spearmanr(again["fid"], retrain["fid"].iloc[[0, 1, 2, 3, 6, 7]]).statistic)
    assert "`retrain seed N` rows" in report["markdown"]
