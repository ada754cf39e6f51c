"""benchmarks/budget_auto.py: the rounds it reads the stopping rule off are the estimator's own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import load_benchmark


def test_the_rounds_of_a_game_match_estimate_with_budget_auto(monkeypatch):
    """rounds_of asserts itself that estimate(budget="auto") stops where its rounds say; here: the rows it gives."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))  # its estimator_accuracy
    bench = load_benchmark("budget_auto")
    rows = bench.rounds_of(("moebius12_order3", 0, 512))
    assert [r["budget"] for r in rows] == [128, 256, 512]
    assert all(np.isfinite(r["estimated"]) and 0 <= r["coverage"] <= 1 for r in rows)
    # more coalitions, a smaller true error on this game of order 3
    assert rows[-1]["true"] < rows[0]["true"]
