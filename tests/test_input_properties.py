"""Property-based tests (hypothesis) of everything a user hands in: every input either works or raises the
project's one-line error (a ValueError, a FileNotFoundError for a missing file), never another exception,
never a traceback from a library underneath, never a hang."""

from __future__ import annotations

import json
import math
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from surrogateshap import FunctionGame, estimate
from surrogateshap.coalitions import read_coalition_values
from surrogateshap.config import load_config
from surrogateshap.contributors import ContributorRegistry
from surrogateshap.estimators import METHODS

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def one_line_error(err: BaseException, path: Path | None = None) -> None:
    """The project's error: a ValueError (not a decoding error leaking from below) or FileNotFoundError,
    one line, naming the file when there is one."""
    assert isinstance(err, (ValueError, FileNotFoundError)), repr(err)
    assert not isinstance(err, UnicodeError), repr(err)
    text = str(err)
    assert text and "\n" not in text, text
    if path is not None:
        assert str(path) in text, text


def write(data: str | bytes, suffix: str) -> Path:
    path = Path(tempfile.mkdtemp()) / f"input{suffix}"
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


FIELDS = st.sampled_from(["0", "1", "2", "", " 1 ", "nan", "inf", "-inf", "1.5", "-3", "x", '"q"', "1.0", "0.0",
                          '"a,b"', "1e308", "1e309", "\u00e9"])
NAMES = st.sampled_from(["a", "b", "c", "value", "coalition", "", "a", " b", "Value"])


@st.composite
def csv_text(draw, names=NAMES, fields=FIELDS) -> bytes:
    """CSV-shaped text: a header and rows of mostly plausible fields, some rows short or long."""
    header = draw(st.lists(names, min_size=0, max_size=5))
    width = len(header)
    rows = draw(st.lists(st.lists(fields, min_size=max(width - 1, 0), max_size=width + 1), max_size=8))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join(",".join(r) for r in [header, *rows]) + draw(st.sampled_from(["", newline]))
    prefix = draw(st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff"]))
    return prefix + text.encode("utf-8")


@SETTINGS
@given(data=st.one_of(csv_text(), st.binary(max_size=200)))
@example(data=b",")  # found by CI's draw: a header of empty fields once escaped as an AssertionError
def test_the_coalition_values_reader_works_or_says_what_is_wrong(data):
    path = write(data, ".csv")
    try:
        table = read_coalition_values(path)
    except Exception as err:  # noqa: BLE001 - the property is about which exceptions come out
        one_line_error(err, path)
        return
    k, n = table.masks.shape
    assert table.masks.dtype == bool and n == len(table.players) >= 1 and k == len(table.names) == len(table.values)
    assert np.isfinite(table.values).all()
    assert len({row.tobytes() for row in table.masks}) == k  # each coalition once


JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 12), st.floats(allow_nan=True), st.text(max_size=6),
                        st.lists(st.integers(), max_size=2))
RECORDS = st.dictionaries(st.sampled_from(["example_id", "contributor", "label", "caption", "other"]), JSON_VALUES,
                          max_size=5)


@st.composite
def jsonl_text(draw) -> bytes:
    lines = draw(st.lists(st.one_of(RECORDS.map(json.dumps), st.text(max_size=20), st.just("")), max_size=8))
    return "\n".join(lines).encode("utf-8")


META_NAMES = st.sampled_from(["example_id", "contributor", "label", "caption", "", "contributor", "x"])
META_FIELDS = st.sampled_from(["e1", "e2", "alice", "bob", "0", "1", "7", "-1", "1.5", "", "a cat", '"x,y"', "\u00e9"])


@SETTINGS
@given(data=st.one_of(csv_text(META_NAMES, META_FIELDS), st.binary(max_size=200)),
       num_labels=st.sampled_from([None, 3]))
def test_the_metadata_csv_reader_works_or_says_what_is_wrong(data, num_labels):
    path = write(data, ".csv")
    try:
        registry = ContributorRegistry.from_file(path, num_labels=num_labels)
    except Exception as err:  # noqa: BLE001
        one_line_error(err, path)
        return
    assert len(registry) >= 1 and sum(registry.n_examples.values()) == len(registry.examples)


@SETTINGS
@given(data=st.one_of(jsonl_text(), st.binary(max_size=200)))
def test_the_metadata_jsonl_reader_works_or_says_what_is_wrong(data):
    path = write(data, ".jsonl")
    try:
        registry = ContributorRegistry.from_file(path)
    except Exception as err:  # noqa: BLE001
        one_line_error(err, path)
        return
    for row in registry.examples:
        assert isinstance(row.contributor, str) and isinstance(row.example_id, str)
        assert isinstance(row.condition, (int, str))


SECTIONS = {"paths": None, "plan": frozenset({"samples_per_contributor", "seed"}), "estimator": frozenset({"budget"})}
YAML_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=8),
                         st.sampled_from(["${plan.seed}", "${nowhere}", "${a}", "${plan}"]))
YAML_TREES = st.recursive(YAML_SCALARS, lambda children: st.one_of(
    st.lists(children, max_size=3),
    st.dictionaries(st.sampled_from(["plan", "paths", "estimator", "seed", "budget", "samples_per_contributor", "a"]),
                    children, max_size=4)), max_leaves=10)
OVERRIDES = st.lists(st.one_of(st.text(max_size=12), st.sampled_from(
    ["plan.seed=3", "plan.seed=[1,", "estimator.budget=.inf", "nope=1", "plan=", "=", "plan.seed.x=1"])), max_size=3)


@SETTINGS
@given(text=st.one_of(YAML_TREES.map(lambda tree: yaml.safe_dump(tree)), st.text(max_size=60), st.binary(max_size=60)),
       overrides=OVERRIDES)
def test_the_config_loader_works_or_says_what_is_wrong(text, overrides):
    path = write(text, ".yaml")
    try:
        config = load_config(path, overrides, sections=SECTIONS)
    except Exception as err:  # noqa: BLE001
        one_line_error(err)
        return
    assert isinstance(config, dict)


NUMBERS = st.one_of(st.none(), st.booleans(), st.integers(-3, 10**12), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=4), st.sampled_from([np.int64(8), np.float64(8.0)]))
OPTIONS = st.dictionaries(st.sampled_from(["cv", "std", "paired", "n_bootstrap", "sampler", "adjust", "bogus"]),
                          st.one_of(NUMBERS, st.sampled_from(["folds", "bootstrap", "msr", "shapley", "uniform"])),
                          max_size=2)


@settings(max_examples=80, deadline=None)
@given(method=st.sampled_from([*METHODS, "banzhaf", ""]), n=st.integers(1, 5), budget=NUMBERS, seed=NUMBERS,
       options=OPTIONS)
def test_estimate_works_or_says_what_is_wrong(method, n, budget, seed, options):
    game = FunctionGame(lambda m: m.sum(1).astype(float) ** 2 + m[:, 0], n)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a budget above 2**n is capped with a warning
            att = estimate(game, method, budget=budget, seed=seed, **options)
    except Exception as err:  # noqa: BLE001
        one_line_error(err)
        return
    assert att.values.shape == (n,) and np.isfinite(att.values).all()
    if method != "loo":  # Shapley values are efficient; leave-one-out values are not
        assert math.isclose(float(att.values.sum()), float(n**2 + 1), rel_tol=1e-6, abs_tol=1e-6)


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_a_byte_order_mark_changes_nothing(bom):
    text = b"example_id,contributor,label\ne1,alice,0\ne2,bob,1\n"
    registry = ContributorRegistry.from_file(write(bom + text, ".csv"))
    assert [ex.example_id for ex in registry.examples] == ["e1", "e2"]
    table = read_coalition_values(write(bom + b"a,b,value\n0,0,0\n1,1,2\n", ".csv"))
    assert table.players == ["a", "b"]
