"""budget="auto": nested rounds of coalitions, a stopping rule on the standard errors, and the outputs that show it."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from surrogateshap.metrics import ContributorFID, ContributorMean
from test_attribution_service import FAST, small_bank

from surrogateshap import MoebiusGame, attribute_bank, estimate
from surrogateshap.attribution import EstimatorSettings
from surrogateshap.coalitions import nested_coalitions, sample_coalitions
from surrogateshap.estimators import make_estimator
from surrogateshap.estimators.surrogate_shap import relative_error, round_budgets
from surrogateshap.report import validate_attribution_document, write_outputs
from surrogateshap.report.document import scalar_metrics


@pytest.mark.parametrize(("n", "paired"), [(14, True), (11, False)])
def test_every_prefix_of_the_nested_sample_is_the_samplers_allocation_at_that_budget(n, paired):
    """Cut at any round's budget, the nested sample holds distinct coalitions, whole pairs, and per size the
    count that sample_coalitions allocates at that budget (to within rounding)."""
    sample = nested_coalitions(n, 2000, seed=5, paired=paired)
    assert not sample.masks[0].any() and sample.masks[1].all()
    for budget in (64, 256, 1024):
        head = sample.masks[:budget]
        assert len({row.tobytes() for row in head}) == budget
        if paired:
            assert {row.tobytes() for row in head} == {(~row).tobytes() for row in head}
        sizes = np.bincount(head.sum(axis=1), minlength=n + 1)
        expected = np.mean([np.bincount(sample_coalitions(n, budget, seed=k, paired=paired).masks.sum(axis=1),
                                        minlength=n + 1) for k in range(20)], axis=0)
        assert np.abs(sizes - expected).max() <= 2.0, (sizes, expected.round(1))


@pytest.mark.parametrize("seed", [0, 1])
def test_auto_budget_stops_where_the_true_error_meets_the_tolerance(seed):
    """On games with known values, the round it stops at is the first whose estimated error is within the
    tolerance; the true error there is within the tolerance too, and above it one round earlier (the rule
    does not stop late by more than a doubling of the budget)."""
    game = MoebiusGame.random(16, order=3, n_terms=40, seed=10 + seed)
    phi = game.shapley_values()
    spread = np.linalg.norm(phi - phi.mean())
    tolerance = 0.08
    att = estimate(game, budget="auto", tolerance=tolerance, seed=seed)
    trace = att.diagnostics["budget_trace"]
    assert att.diagnostics["converged"] and trace[-1]["error"] <= tolerance
    assert all(r["error"] > tolerance for r in trace[:-1]) and len(trace) >= 2
    assert [r["budget"] for r in trace] == round_budgets(16, 4096)[: len(trace)]
    assert att.n_evaluations == trace[-1]["budget"]
    assert np.linalg.norm(att.values - phi) / spread <= tolerance
    earlier = estimate(game, budget=trace[-2]["budget"], seed=seed, sampler="shapley")
    assert np.linalg.norm(earlier.values - phi) / spread > tolerance / 4  # not far past the needed budget


def test_auto_budget_at_its_maximum_warns_and_says_so():
    game = MoebiusGame.random(12, order=3, n_terms=30, seed=3)
    with pytest.warns(UserWarning, match=r"stopped at max_budget=300 .* raise max_budget or tolerance"):
        att = estimate(game, budget="auto", tolerance=1e-6, max_budget=300)
    assert not att.diagnostics["converged"] and att.n_evaluations == 300
    assert [r["budget"] for r in att.diagnostics["budget_trace"]] == [128, 256, 300]
    with pytest.warns(UserWarning, match=r"stopped at all 32 coalitions \(32 evaluated\)"):
        estimate(MoebiusGame.random(5, order=3, n_terms=6, seed=3), budget="auto", tolerance=1e-9)


def test_auto_budget_is_refused_where_it_cannot_work():
    with pytest.raises(ValueError, match="offered by method 'surrogateshap' only"):
        make_estimator("kernelshap", budget="auto")
    with pytest.raises(ValueError, match="budget must be an integer of at least 2, got 'sometimes'.*or give 'auto'"):
        make_estimator("surrogateshap", budget="sometimes")
    with pytest.raises(ValueError, match=r"budget 'Auto': write 'auto' \(lowercase"):
        make_estimator("surrogateshap", budget="Auto")
    with pytest.raises(ValueError, match="stops on the values' standard errors"):
        make_estimator("surrogateshap", budget="auto", std=None)
    with pytest.raises(ValueError, match="tolerance must be a positive number"):
        make_estimator("surrogateshap", budget="auto", tolerance=0)
    with pytest.raises(ValueError, match="max_budget must be an integer of at least 2"):
        make_estimator("surrogateshap", budget="auto", max_budget=1)
    with pytest.raises(ValueError, match="estimator section: budget 'auto'"):
        EstimatorSettings.from_config({"method": "permutation", "budget": "auto"})


def test_relative_error_of_equal_values():
    assert relative_error(np.ones(3), np.zeros(3)) == 0.0
    assert relative_error(np.ones(3), np.full(3, 0.1)) == float("inf")


def test_auto_budget_reaches_the_document_report_plot_and_scalars(tmp_path):
    bank, reference = small_bank(n=8)
    utilities = {"mean": ContributorMean(feature="score"), "fid": ContributorFID(feature="x", reference=reference)}
    settings = EstimatorSettings.from_config({"budget": "auto", "n_holdout": 0,
                                              "options": {**FAST, "tolerance": 0.5}})
    document = attribute_bank(bank, utilities, {"mean": 0.0, "fid": 40.0}, settings, progress=False).document
    validate_attribution_document(document)
    assert document["budget"] == "auto"
    for name in utilities:
        trace = document["utilities"][name]["budget_trace"]
        assert trace["tolerance"] == 0.5 and trace["rounds"][0]["budget"] == 128
        assert document["utilities"][name]["n_evaluations"] == trace["rounds"][-1]["budget"]
    paths = write_outputs(tmp_path, document)
    assert Image.open(paths["budget_fid.png"]).size[0] > 300
    report = (tmp_path / "report.md").read_text()
    assert "a budget chosen in rounds" in report and "![fid: budget chosen in rounds](budget_fid.png)" in report
    assert scalar_metrics(document)["fid/coalitions"] == document["utilities"]["fid"]["n_evaluations"]
