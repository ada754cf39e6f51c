"""ContributorBank: construction, plan order, save/load, shards, resume, integrity errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import surrogateshap.io
from surrogateshap.bank import ContributorBank, ShardWriter, existing_rows


def make_bank(seed: int = 0, config: dict | None = None) -> tuple[ContributorBank, dict]:
    rng = np.random.default_rng(seed)
    ids = ["b", "a", "b", "a", "c", "c", "a", "b", "c", "a", "b", "c"]
    raw = {
        "inception": rng.normal(size=(len(ids), 5)).astype(np.float32),
        "logits": rng.normal(size=(len(ids), 3, 2)),
        "score": rng.normal(size=len(ids)),
        "flag": rng.random(len(ids)) > 0.5,
    }
    bank = ContributorBank(
        raw, ids, {"a": 40, "b": 20, "c": 60, "d": 10}, seed=np.arange(100, 112), config=config or {"run": 1}
    )
    return bank, {"ids": ids, **raw}


def assert_same_bank(a: ContributorBank, b: ContributorBank) -> None:
    assert a.contributor_ids == b.contributor_ids
    assert a.n_examples == b.n_examples
    assert a.config == b.config
    assert a.array_names == b.array_names
    for name in a.array_names + ["contributor_index", "sample_index", "seed"]:
        x, y = a[name], b[name]
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes(), name


# ----------------------------------------------------------------------------- construction
def test_contributor_order_follows_n_examples_and_rows_are_in_plan_order():
    bank, raw = make_bank()
    assert bank.contributor_ids == ["a", "b", "c", "d"]
    assert len(bank) == 12
    ci, si = bank.contributor_index, bank.sample_index
    assert list(ci) == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]
    assert list(si) == [0, 1, 2, 3] * 3
    # the default sample_index is the running index within each contributor, in the given order
    rows_a = [i for i, c in enumerate(raw["ids"]) if c == "a"]
    np.testing.assert_array_equal(bank["inception"][:4], raw["inception"][rows_a])
    np.testing.assert_array_equal(bank["seed"][:4], 100 + np.array(rows_a))
    np.testing.assert_array_equal(bank.sample_mass(), [4, 4, 4, 0])
    with pytest.raises(ValueError):  # read-only views
        bank["inception"][0, 0] = 1.0


def test_order_of_first_appearance_without_n_examples_and_int_ids():
    bank = ContributorBank({"x": np.arange(5.0)}, [7, 3, 7, 1, 3])
    assert bank.contributor_ids == ["7", "3", "1"]
    assert bank.n_examples == {"7": 2, "3": 2, "1": 1}
    np.testing.assert_array_equal(bank["x"], [0.0, 2.0, 1.0, 4.0, 3.0])
    assert bank.select(3).contributor_ids == ["7", "3", "1"]
    np.testing.assert_array_equal(bank.select([3]).__getitem__("x"), [1.0, 4.0])
    assert set(bank["seed"]) == {-1}


def test_select_and_row_keys():
    bank, raw = make_bank()
    sub = bank.select(["c", "a"])
    assert len(sub) == 8 and set(sub.contributor_index) == {0, 2}
    assert sub.contributor_ids == bank.contributor_ids
    assert ("b", 3) in bank.row_keys() and ("d", 0) not in bank.row_keys()
    with pytest.raises(KeyError, match="zzz"):
        bank.select("zzz")


def test_bad_construction_errors():
    x = np.zeros((3, 2))
    with pytest.raises(ValueError, match="not in n_examples"):
        ContributorBank({"x": x}, ["a", "b", "z"], {"a": 1, "b": 1})
    with pytest.raises(ValueError, match="same number of rows"):
        ContributorBank({"x": x, "y": np.zeros(4)}, ["a", "b", "c"])
    with pytest.raises(ValueError, match="one id per sample"):
        ContributorBank({"x": x}, ["a", "b"])
    with pytest.raises(ValueError, match="reserved"):
        ContributorBank({"seed": x}, ["a", "b", "c"])
    with pytest.raises(ValueError, match="more than once"):
        ContributorBank({"x": x}, ["a", "a", "b"], sample_index=[0, 0, 1])
    with pytest.raises(ValueError, match="positive"):
        ContributorBank({"x": x}, ["a", "a", "b"], {"a": 0, "b": 1})
    with pytest.raises(ValueError, match="JSON"):
        ContributorBank({"x": x}, ["a", "a", "b"], config={"f": object()})
    with pytest.raises(KeyError, match="no array"):
        ContributorBank({"x": x}, ["a", "a", "b"])["nope"]


def _set_manifest_flag(path: Path, value: bool) -> None:
    """Give a manifest the ``"membership"`` flag of the pre-release bank-level membership format."""
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, "membership": value}))


@pytest.mark.parametrize("flag", [False, True])
def test_manifest_of_the_pre_release_membership_format_is_refused(tmp_path, flag):
    bank, _ = make_bank()
    bank.save(tmp_path)
    assert "membership" not in json.loads((tmp_path / "manifest.json").read_text())
    _set_manifest_flag(tmp_path / "manifest.json", flag)
    retired = r"manifest.json has a `membership` key: .*pre-release format.*Regenerate the bank"
    with pytest.raises(ValueError, match=retired):
        ContributorBank.load(tmp_path)
    with pytest.raises(ValueError, match=retired):
        existing_rows(tmp_path)
    with pytest.raises(ValueError, match=retired):
        ShardWriter(tmp_path, bank.n_examples, config=bank.config)


# ----------------------------------------------------------------------------- save / load
def test_save_load_round_trip_is_bit_identical(tmp_path):
    bank, _ = make_bank(config={"model": "ddpm", "steps": 50, "nested": {"w": 1.4}})
    out = bank.save(tmp_path / "bank")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["contributor_ids"] == ["a", "b", "c", "d"]
    assert manifest["n_examples"] == {"a": 40, "b": 20, "c": 60, "d": 10}
    assert manifest["config"] == {"model": "ddpm", "steps": 50, "nested": {"w": 1.4}}
    assert manifest["library_version"]
    [entry] = manifest["shards"]
    assert entry["rows"] == 12 and len(entry["sha256"]) == 64
    back = ContributorBank.load(out, expected_config={"model": "ddpm", "steps": 50, "nested": {"w": 1.4}})
    assert_same_bank(bank, back)
    with pytest.raises(ValueError, match="already holds"):
        bank.save(out)
    bank.save(out, shard_rows=5, overwrite=True)
    assert len(json.loads((out / "manifest.json").read_text())["shards"]) == 3
    assert_same_bank(bank, ContributorBank.load(out))


def test_expected_config_mismatch_names_the_difference(tmp_path):
    bank, _ = make_bank(config={"model": "ddpm", "nested": {"w": 1.4}})
    bank.save(tmp_path)
    with pytest.raises(ValueError, match=r"different config: nested\.w"):
        ContributorBank.load(tmp_path, expected_config={"model": "ddpm", "nested": {"w": 2.0}})


def test_append_shards_then_load_merges_in_plan_order(tmp_path):
    bank, _ = make_bank()
    writer = ShardWriter(tmp_path, bank.n_examples, config=bank.config)
    assert writer.existing_rows() == set()
    # write the plan in a scrambled order, batch by batch
    order = np.random.default_rng(1).permutation(len(bank))
    for batch in np.array_split(order, 4):
        writer.append(
            {name: bank[name][batch] for name in bank.array_names},
            [bank.contributor_ids[c] for c in bank.contributor_index[batch]],
            sample_index=bank.sample_index[batch],
            seed=bank.seed[batch],
        )
    assert len(json.loads((tmp_path / "manifest.json").read_text())["shards"]) == 4
    assert_same_bank(bank, ContributorBank.load(tmp_path))


def test_resume_helper_lists_existing_rows_and_writer_resumes(tmp_path):
    bank, _ = make_bank()
    bank.select("a").append_shard(tmp_path)
    bank.select("c").append_shard(tmp_path)
    done = existing_rows(tmp_path)
    assert done == {("a", i) for i in range(4)} | {("c", i) for i in range(4)}
    assert ContributorBank.existing_rows(tmp_path) == done
    # a second run (new writer, same config) appends the rest and names its shard after the last one
    writer = ShardWriter(tmp_path, bank.n_examples, config=bank.config)
    path = writer.append_bank(bank.select("b"))
    assert path.name == "shard-00002.safetensors"
    assert writer.existing_rows() == bank.row_keys()
    assert_same_bank(bank, ContributorBank.load(tmp_path))
    with pytest.raises(ValueError, match="different config"):
        ShardWriter(tmp_path, bank.n_examples, config={"run": 2})
    with pytest.raises(ValueError, match="other contributors"):
        ShardWriter(tmp_path, {"a": 1})
    assert existing_rows(tmp_path / "absent") == set()


def test_per_rank_shards_merge_in_plan_order(tmp_path):
    bank, _ = make_bank()
    rows = np.arange(len(bank))
    for rank, part in enumerate(
        [rows[1::3], rows[0::3], rows[2::3]]
    ):  # uneven, interleaved, like DDP predict
        writer = ShardWriter(tmp_path, bank.n_examples, config=bank.config, rank=rank)
        for batch in np.array_split(part, 2):
            writer.append_bank(bank.take(batch))
    names = sorted(os.listdir(tmp_path))
    assert "manifest.json" not in names
    assert {"manifest.rank0.json", "manifest.rank1.json", "manifest.rank2.json"} <= set(names)
    assert "shard-rank2-00001.safetensors" in names
    assert_same_bank(bank, ContributorBank.load(tmp_path))
    assert existing_rows(tmp_path) == bank.row_keys()


def test_duplicate_rows_identical_are_deduped_different_raise(tmp_path):
    bank, _ = make_bank()
    bank.append_shard(tmp_path, rank=0)
    bank.select("a").append_shard(tmp_path, rank=1)  # the same rows again, identical
    assert_same_bank(bank, ContributorBank.load(tmp_path))
    changed = bank.select("b")
    tampered = ContributorBank(
        {name: changed[name] + 1 if name == "score" else changed[name] for name in changed.array_names},
        ["b"] * len(changed),
        bank.n_examples,
        sample_index=changed.sample_index,
        seed=changed.seed,
        config=bank.config,
    )
    tampered.append_shard(tmp_path, rank=2)
    with pytest.raises(ValueError, match=r"written twice .*'score'.*shard-rank0-00000.*shard-rank2-00000"):
        ContributorBank.load(tmp_path)


def _saved(tmp_path: Path) -> tuple[ContributorBank, Path]:
    bank, _ = make_bank()
    bank.save(tmp_path, shard_rows=6)
    return bank, tmp_path / "shard-00001.safetensors"


def test_tampered_shard_is_named(tmp_path):
    _, shard = _saved(tmp_path)
    data = bytearray(shard.read_bytes())
    data[-3] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"shard-00001\.safetensors fails its sha256.*Delete shard-00001"):
        ContributorBank.load(tmp_path)
    with pytest.raises(ValueError, match="sha256"):
        existing_rows(tmp_path)


def test_truncated_shard_is_named(tmp_path):
    _, shard = _saved(tmp_path)
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(
        ValueError, match=r"shard-00001\.safetensors has \d+ bytes.*truncated.*rerun generation"
    ):
        ContributorBank.load(tmp_path)


def test_missing_shard_is_named_and_writer_regenerates_it(tmp_path):
    bank, shard = _saved(tmp_path)
    lost = {key for key in bank.row_keys() if key not in bank.take(np.arange(6)).row_keys()}
    shard.unlink()
    with pytest.raises(ValueError, match=r"shard-00001\.safetensors is listed in manifest\.json but missing"):
        ContributorBank.load(tmp_path)
    assert existing_rows(tmp_path) == bank.row_keys() - lost
    with pytest.warns(UserWarning, match="missing"):
        writer = ShardWriter(tmp_path, bank.n_examples, config=bank.config)
    writer.append_bank(bank.take(np.arange(6, 12)))
    assert_same_bank(bank, ContributorBank.load(tmp_path))


def test_incompatible_or_damaged_manifest(tmp_path):
    bank, _ = _saved(tmp_path)
    path = tmp_path / "manifest.json"
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, "format_version": 99, "library_version": "9.0"}))
    with pytest.raises(ValueError, match=r"manifest\.json has format version 99 .*Regenerate"):
        ContributorBank.load(tmp_path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="cannot be read"):
        ContributorBank.load(tmp_path)
    with pytest.raises(ValueError, match="no contributor bank"):
        ContributorBank.load(tmp_path / "empty")


def test_failed_writes_leave_no_half_written_files(tmp_path, monkeypatch):
    bank, _ = make_bank()
    bank.select("a").append_shard(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(surrogateshap.io.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        bank.select("b").append_shard(tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    monkeypatch.undo()

    # the shard lands but the manifest update fails: the manifest is unchanged, the shard is unlisted
    real_replace = os.replace

    def replace_shards_only(src, dst):
        if str(dst).endswith(".json"):
            raise OSError("interrupted")
        return real_replace(src, dst)

    monkeypatch.setattr(surrogateshap.io.os, "replace", replace_shards_only)
    with pytest.raises(OSError, match="interrupted"):
        bank.select("b").append_shard(tmp_path)
    monkeypatch.undo()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert (tmp_path / "manifest.json").read_bytes() == before["manifest.json"]
    assert existing_rows(tmp_path) == bank.select("a").row_keys()
    # the next run overwrites the orphan shard and completes the bank
    bank.select(["b", "c"]).append_shard(tmp_path)
    assert_same_bank(bank, ContributorBank.load(tmp_path))


def test_empty_bank_with_schema_round_trips(tmp_path):
    bank = ContributorBank({"x": np.zeros((0, 3), np.float32)}, [], {"a": 1})
    assert len(bank) == 0
    bank.save(tmp_path)
    back = ContributorBank.load(tmp_path)
    assert len(back) == 0 and back["x"].shape == (0, 3) and back["x"].dtype == np.float32
