"""Contributors who share a condition, end to end on a reduced config with the shipped models (no mocks).

The DDPM of ``configs/digits_shared.yaml`` is conditioned on the digit, so each planted twin
(corrupted or marked) hides behind the label it shares with a clean twin. Soft membership must
still find the planted contributors; the plain proxy could only give twins the same value.
"""

import pytest
from test_demo import REDUCED, roles_at

from surrogateshap import SoftMembership
from surrogateshap.examples.digits.demo import default_config_path, run_demo
from surrogateshap.report import load_attribution_document

SHARED = {**REDUCED, "plan.samples_per_contributor": 48, "base.samples_per_contributor": 8}
PLANTED_UNITS = {"label:1", "label:2", "label:4", "label:7", "label:8"}


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("shared")
    config = default_config_path().with_name("digits_shared.yaml")
    return out, run_demo(out, config, overrides=SHARED, progress=False, use_wandb=False)


def test_the_shipped_generator_is_used_and_the_bank_is_per_digit(shared_run):
    out, run = shared_run
    assert not (out / "models").exists()  # the shipped ddpm_shared matches the planting
    assert run.bank.contributor_ids == [f"label:{d}" for d in range(10)]
    assert len(run.bank) == 10 * SHARED["plan.samples_per_contributor"]


def test_the_classifier_separates_exactly_the_planted_twins(shared_run):
    _, run = shared_run
    summary = run.document["membership"]
    assert summary["n_units"] == 10 and len(summary["shared_units"]) == 10
    for unit in summary["shared_units"]:
        if unit["unit"] in PLANTED_UNITS:
            assert not unit["fallback"] and unit["accuracy"] > 0.95, unit
            assert unit["log_loss"] < 0.2 * unit["prior_log_loss"], unit


def test_planted_twins_are_found_behind_their_shared_labels(shared_run):
    document = shared_run[1].document
    for utility, k, end, role in (("marker_rate", 2, "top", "marker"), ("fid", 3, "top", "corrupted"),
                                  ("quality", 3, "bottom", "corrupted")):
        found, ranked = roles_at(document, utility, k, end)
        assert found == {role}, (utility, ranked)


def test_document_validates_with_one_value_per_contributor(shared_run):
    out, run = shared_run
    document = load_attribution_document(out / "attribution.json")
    assert [c["id"] for c in document["contributors"]] == [f"digit{d}_{x}" for d in range(10) for x in "ab"]
    for utility in document["utilities"].values():
        assert len(utility["values"]) == 20
    report = (out / "report.md").read_text()
    assert "## Shared conditions" in report and "| label:1 | digit1_a" in report
    membership = SoftMembership.load(out / "membership.npz")
    assert membership.contributor_ids == [c["id"] for c in document["contributors"]]
    assert len(membership) == len(run.bank)
