"""ContributorRegistry (CSV / JSONL / rows, bad-row reports) and SamplingPlan (seeds, conditions, resume)."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest
import torch

from surrogateshap.contributors import ContributorRegistry
from surrogateshap.generation.plan import SamplingPlan, collate_plan_rows, sample_seed, stable_int


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- registry
def test_csv_labels(tmp_path):
    path = _write(
        tmp_path / "meta.csv",
        "example_id,contributor,label\n1,bob,2\n2,alice,0\n3,bob,2\n4,bob,1\n\n5,alice,0\n",
    )
    reg = ContributorRegistry.from_file(path, num_labels=3)
    assert reg.condition_kind == "label"
    assert reg.contributor_ids == ["bob", "alice"]  # first appearance
    assert reg.n_examples == {"bob": 3, "alice": 2}
    assert reg.label_counts("bob") == {1: 1, 2: 2}
    assert reg.label_counts("alice") == {0: 2}
    assert reg.example_ids("bob") == ["1", "3", "4"]
    assert len(reg) == 2 and "bob" in reg and "carol" not in reg
    with pytest.raises(ValueError, match="captions|class labels"):
        reg.captions("bob")


def test_jsonl_captions_and_custom_columns(tmp_path):
    lines = [
        {"id": "a1", "artist": "Monet", "text": "water lilies"},
        {"id": "a2", "artist": "Gogh", "text": "starry night"},
        {"id": "a3", "artist": "Monet", "text": "water lilies"},
        {"id": "a4", "artist": "Monet", "text": "haystacks"},
    ]
    path = _write(tmp_path / "meta.jsonl", "\n".join(json.dumps(r) for r in lines) + "\n\n")
    reg = ContributorRegistry.from_file(
        path, example_column="id", contributor_column="artist", caption_column="text"
    )
    assert reg.condition_kind == "caption"
    assert reg.contributor_ids == ["Monet", "Gogh"]
    assert reg.n_examples == {"Monet": 3, "Gogh": 1}
    assert reg.captions("Monet") == ["water lilies", "water lilies", "haystacks"]


def test_in_memory_rows_and_fingerprint():
    rows = [{"example_id": i, "contributor": f"c{i % 2}", "label": i % 3} for i in range(6)]
    reg = ContributorRegistry.from_rows(rows, num_labels=3)
    assert reg.n_examples == {"c0": 3, "c1": 3}
    assert reg.fingerprint() == ContributorRegistry.from_rows(rows).fingerprint()
    rows[0]["label"] = 1
    assert reg.fingerprint() != ContributorRegistry.from_rows(rows).fingerprint()


def test_csv_bad_rows_reported_together(tmp_path):
    path = _write(
        tmp_path / "meta.csv",
        "example_id,contributor,label\n"
        "1,bob,2\n"  # line 2: fine
        "2,,1\n"  # line 3: missing contributor
        "3,bob,7\n"  # line 4: out of range
        "1,alice,0\n"  # line 5: duplicate id
        "4,alice,cat\n"  # line 6: not an integer
        "5,alice,1.5\n"  # line 7: not an integer
        "6,alice,-1\n"  # line 8: negative
        "7,alice,\n",  # line 9: missing label
    )
    with pytest.raises(ValueError) as info:
        ContributorRegistry.from_file(path, num_labels=3)
    msg = str(info.value)
    assert "7 bad row(s)" in msg and str(path) in msg
    assert re.search(r"line 3: missing contributor", msg)
    assert re.search(r"line 4: label 7 is out of range \[0, 3\)", msg)
    assert re.search(r"line 5: duplicate example id '1' \(first on line 2\)", msg)
    assert re.search(r"line 6: label 'cat' is not an integer", msg)
    assert re.search(r"line 7: label '1.5' is not an integer", msg)
    assert re.search(r"line 8: label -1 is out of range", msg)
    assert re.search(r"line 9: missing label", msg)
    assert "line 2:" not in msg


def test_jsonl_bad_rows_reported_together(tmp_path):
    path = _write(
        tmp_path / "meta.jsonl",
        '{"example_id": 1, "contributor": "a", "caption": "ok"}\n'
        '{"example_id": 2, "contributor": "a", "caption": "  "}\n'
        "\n"
        "{not json\n"
        '{"example_id": 1, "contributor": "b", "caption": "dup"}\n'
        '{"example_id": 3, "caption": "no contributor"}\n',
    )
    with pytest.raises(ValueError) as info:
        ContributorRegistry.from_file(path)
    msg = str(info.value)
    assert "4 bad row(s)" in msg
    for expected in (
        "line 2: empty caption",
        "line 4: not valid JSON",
        "line 5: duplicate example id '1' (first on line 1)",
        "line 6: missing contributor",
    ):
        assert expected in msg


def test_missing_metadata_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nope.csv"))):
        ContributorRegistry.from_file(tmp_path / "nope.csv")


# ----------------------------------------------------------------------------- plan
def _label_registry(contributors):
    rows = []
    for cid, labels in contributors.items():
        rows += [{"example_id": f"{cid}-{i}", "contributor": cid, "label": lab} for i, lab in enumerate(labels)]
    return ContributorRegistry.from_rows(rows, num_labels=10)


def test_seed_is_stable_and_not_python_hash():
    # a regression constant: the seed must never depend on PYTHONHASHSEED or on the plan around it
    assert stable_int("a") == int.from_bytes(__import__("hashlib").sha256(b"a").digest()[:8], "little")
    assert sample_seed(0, "a", 0) == sample_seed(0, "a", 0)
    assert len({sample_seed(0, "a", 0), sample_seed(1, "a", 0), sample_seed(0, "b", 0), sample_seed(0, "a", 1)}) == 4
    assert 0 <= sample_seed(123, "x", 5) < 2**63


def test_rows_depend_only_on_seed_contributor_and_index():
    small = SamplingPlan(_label_registry({"a": [0, 1, 1], "b": [2, 3]}), 3, seed=7)
    # add a contributor in front, raise m for everyone: existing rows keep seeds and conditions
    bigger = SamplingPlan(_label_registry({"z": [5], "a": [0, 1, 1], "b": [2, 3]}), 5, seed=7)
    by_key = {(r["contributor"], r["sample_index"]): r for r in (bigger[i] for i in range(len(bigger)))}
    assert len(small) == 6 and len(bigger) == 15
    for i in range(len(small)):
        row = small[i]
        other = by_key[(row["contributor"], row["sample_index"])]
        assert (row["seed"], row["condition"]) == (other["seed"], other["condition"])
        assert row["seed"] == sample_seed(7, row["contributor"], row["sample_index"])
    assert small[0]["contributor_index"] == 0 and by_key[("a", 0)]["contributor_index"] == 1
    # another global seed gives other seeds
    assert SamplingPlan(small.registry, 3, seed=8)[0]["seed"] != small[0]["seed"]
    # plan order: contributor order, then sample index
    assert [small.row_key(i) for i in range(6)] == [("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1), ("b", 2)]


def test_per_contributor_m_and_validation():
    reg = _label_registry({"a": [0], "b": [1]})
    plan = SamplingPlan(reg, {"a": 2, "b": 0})
    assert len(plan) == 2 and {plan[i]["contributor"] for i in range(2)} == {"a"}
    with pytest.raises(ValueError, match="missing"):
        SamplingPlan(reg, {"a": 2})
    with pytest.raises(ValueError, match="must be an integer of at least 0"):
        SamplingPlan(reg, -1)
    with pytest.raises(IndexError):
        plan[2]


def test_label_conditions_follow_example_counts():
    plan = SamplingPlan(_label_registry({"a": [3, 7, 7, 7]}), 4000, seed=0)
    counts = Counter(plan[i]["condition"] for i in range(len(plan)))
    assert set(counts) == {3, 7}
    assert abs(counts[7] / 4000 - 0.75) < 0.03  # binomial sd ~0.007


def test_caption_conditions_uniform_over_examples():
    rows = [{"contributor": "a", "caption": c} for c in ("x", "x", "y")]
    plan = SamplingPlan(ContributorRegistry.from_rows(rows), 3000, seed=1)
    counts = Counter(plan[i]["condition"] for i in range(len(plan)))
    assert abs(counts["x"] / 3000 - 2 / 3) < 0.03


def test_remaining_and_collate():
    plan = SamplingPlan(_label_registry({"a": [0], "b": [1]}), 3, seed=0)
    rest = plan.remaining({("a", 0), ("b", 2)})
    assert [plan.row_key(i) for i in rest.indices] == [("a", 1), ("a", 2), ("b", 0), ("b", 1)]
    batch = collate_plan_rows([rest[i] for i in range(len(rest))])
    assert batch["contributor"] == ["a", "a", "b", "b"]
    assert batch["condition"] == [0, 0, 1, 1] and isinstance(batch["condition"], list)
    assert batch["seed"].dtype == torch.int64 and batch["sample_index"].tolist() == [1, 2, 0, 1]
    assert plan.describe()["samples_per_contributor"] == {"a": 3, "b": 3}


def test_rank_shard_sampler_without_process_group_yields_every_row():
    from surrogateshap.generation.plan import RankShardSampler

    sampler = RankShardSampler(5)
    assert list(sampler) == [0, 1, 2, 3, 4] and len(sampler) == 5
    assert list(RankShardSampler(0)) == []
    # with a Trainer, its rank and world size decide (not a process group left over from another run)
    from types import SimpleNamespace

    assert list(RankShardSampler(5, SimpleNamespace(global_rank=1, world_size=2))) == [1, 3]
    assert len(RankShardSampler(1, SimpleNamespace(global_rank=1, world_size=2))) == 0
    assert list(RankShardSampler(3, SimpleNamespace(global_rank=0, world_size=1))) == [0, 1, 2]
