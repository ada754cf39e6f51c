"""The rows of a bank: per-sample arrays and their bookkeeping, checked and kept in plan order.

Contributor order (the players' order in every game): the key order of ``n_examples`` when it
is given (it must cover every id in ``contributors``; a listed contributor without samples is
allowed and only reported when a coalition needs its samples); otherwise the order of first
appearance in ``contributors``, with ``n_examples`` = the number of samples of each contributor.
Ids are stored as strings (``str(id)``).

Rows are always kept in *plan order*: sorted by (contributor order, sample_index). A
(contributor, sample_index) pair may occur once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["RESERVED_ARRAYS", "BankRows", "bank_rows", "in_plan_order", "json_config", "normalise_n_examples"]

#: bookkeeping arrays every bank row has besides its named arrays
RESERVED_ARRAYS = ("contributor_index", "sample_index", "seed")


def json_config(obj: Any, what: str) -> Any:
    """``obj`` as it reads back from JSON, or a ValueError saying that ``what`` must be JSON-serialisable.

    >>> json_config({"steps": (1, 2)}, "config")
    {'steps': [1, 2]}
    """
    try:
        return json.loads(json.dumps(obj))
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{what} must be JSON-serialisable (dicts, lists, str, numbers, bool, None): {err}"
        ) from err


def normalise_n_examples(n_examples: Mapping[Any, Any]) -> dict[str, int | float]:
    """``n_examples`` with string ids and positive numbers (integral ones as int), or a ValueError naming the entry.

    >>> normalise_n_examples({1: 3.0, "b": 2.5})
    {'1': 3, 'b': 2.5}
    """
    if not isinstance(n_examples, Mapping):
        raise ValueError(
            f"n_examples must be a mapping contributor id -> number of training examples, got "
            f"{type(n_examples).__name__}."
        )
    out: dict[str, int | float] = {}
    for key, value in n_examples.items():
        name = str(key)
        if name in out:
            raise ValueError(f"n_examples lists contributor {name!r} twice (ids are compared as strings).")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"n_examples[{name!r}] must be a positive number, got {value!r}.") from None
        if not np.isfinite(number) or number <= 0:
            raise ValueError(f"n_examples[{name!r}] must be a positive finite number, got {value!r}.")
        out[name] = int(number) if number.is_integer() else number
    if not out:
        raise ValueError("n_examples is empty: a bank needs at least one contributor.")
    return out


@dataclass(frozen=True)
class BankRows:
    """Per-sample arrays in plan order with their contributors (what a bank holds and a shard stores).

    Attributes
    ----------
    arrays : name -> (N, ...) array.
    contributor_index, sample_index, seed : (N,) int64 bookkeeping (seed -1 = unknown).
    contributor_ids : the players, in order; ``contributor_index`` points into it.
    n_examples : contributor id -> training examples, in player order.

    Build it with :func:`bank_rows`, which checks and orders what it is given.
    """

    arrays: dict[str, np.ndarray]
    contributor_index: np.ndarray
    sample_index: np.ndarray
    seed: np.ndarray
    contributor_ids: list[str]
    n_examples: dict[str, int | float]

    def __len__(self) -> int:
        return int(self.contributor_index.shape[0])

    def take(self, rows: np.ndarray) -> BankRows:
        """The rows at positions ``rows`` (still in plan order when ``rows`` is increasing)."""
        return BankRows({k: v[rows] for k, v in self.arrays.items()}, self.contributor_index[rows],
                        self.sample_index[rows], self.seed[rows], self.contributor_ids, self.n_examples)

    def schema(self) -> dict[str, dict[str, Any]]:
        """Each array's dtype and per-row shape, as a manifest records them."""
        return {name: {"dtype": arr.dtype.name, "shape": list(arr.shape[1:])} for name, arr in self.arrays.items()}


def _int_array(values: Any, n: int, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) (one entry per sample), got shape {arr.shape}.")
    if n and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}.")
    return arr.astype(np.int64, copy=True)


def _running_index(contributor_index: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each contributor, in the given row order."""
    out = np.zeros(contributor_index.shape[0], dtype=np.int64)
    order = np.argsort(contributor_index, kind="stable")
    sorted_ci = contributor_index[order]
    starts = (
        np.r_[0, np.flatnonzero(np.diff(sorted_ci)) + 1] if sorted_ci.size else np.zeros(0, dtype=np.int64)
    )
    group_start = np.repeat(starts, np.diff(np.r_[starts, sorted_ci.size]))
    out[order] = np.arange(sorted_ci.size) - group_start
    return out


def _check_array_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"bank array names must be non-empty strings, got {name!r}.")
    if name in RESERVED_ARRAYS or name.startswith("__"):
        raise ValueError(
            f"bank array name {name!r} is reserved (reserved: {', '.join(RESERVED_ARRAYS)}, and names "
            "starting with '__'); rename it."
        )
    return name


def _common_length(arrays: Mapping[str, np.ndarray]) -> int:
    lengths = {}
    for name, arr in arrays.items():
        if arr.ndim == 0:
            raise ValueError(f"bank array {name!r} is a scalar; every array needs one row per sample.")
        if arr.dtype.kind not in "biuf":
            raise ValueError(
                f"bank array {name!r} has dtype {arr.dtype}; only bool, integer and float arrays "
                "can be stored."
            )
        lengths[name] = arr.shape[0]
    if len(set(lengths.values())) > 1:
        raise ValueError(f"bank arrays must all have the same number of rows (samples), got {lengths}.")
    return next(iter(lengths.values()))


def _resolve_contributors(
    contributors: Any, n_examples: Mapping[Any, Any] | None, n: int
) -> tuple[list[str], np.ndarray, dict[str, int | float]]:
    n_ex = None if n_examples is None else normalise_n_examples(n_examples)
    if contributors is None:
        raise ValueError(
            "contributors is required (one id per sample); for contributors who share conditions, "
            "generate the bank per unit of shared conditions and pass a SoftMembership to ProxyGame."
        )
    names = np.asarray([str(c) for c in contributors], dtype=object)
    if names.shape != (n,):
        raise ValueError(f"contributors must list one id per sample ({n}), got {names.shape[0]}.")
    uniq, first, inverse = np.unique(names.astype(str), return_index=True, return_inverse=True)
    if n_ex is None:
        if n == 0:
            raise ValueError("a bank without samples needs n_examples to name its contributors.")
        order = np.argsort(first, kind="stable")
        ids = [str(uniq[i]) for i in order]
        rank = np.empty(len(uniq), dtype=np.int64)
        rank[order] = np.arange(len(uniq))
        index = rank[inverse.reshape(-1)]
        counts = np.bincount(index, minlength=len(ids))
        return ids, index, {cid: int(c) for cid, c in zip(ids, counts, strict=True)}
    ids = list(n_ex)
    position = {cid: i for i, cid in enumerate(ids)}
    unknown = [str(u) for u in uniq if str(u) not in position]
    if unknown:
        raise ValueError(
            f"contributors {unknown[:10]} have samples but are not in n_examples; n_examples must "
            "list every "
            f"contributor (it lists {ids[:10]}{'...' if len(ids) > 10 else ''})."
        )
    lookup = np.array([position[str(u)] for u in uniq], dtype=np.int64)
    return ids, lookup[inverse.reshape(-1)], n_ex


def in_plan_order(
    arrays: Mapping[str, np.ndarray],
    index: np.ndarray,
    ids: Sequence[str],
    n_examples: Mapping[str, int | float],
    sample: np.ndarray,
    seeds: np.ndarray,
    *,
    check_duplicates: bool = True,
) -> BankRows:
    """Rows already checked one by one, sorted into plan order (duplicate (contributor, sample_index)
    pairs refused unless ``check_duplicates`` is False, for rows a caller has deduplicated itself)."""
    order = np.lexsort((sample, index))
    if not np.array_equal(order, np.arange(order.size)):
        arrays = {k: v[order] for k, v in arrays.items()}
        index, sample, seeds = index[order], sample[order], seeds[order]
    if check_duplicates and index.size > 1:
        dup = np.flatnonzero((index[1:] == index[:-1]) & (sample[1:] == sample[:-1]))
        if dup.size:
            pairs = [(ids[index[i]], int(sample[i])) for i in dup[:5]]
            raise ValueError(
                f"{dup.size} (contributor, sample_index) pair(s) occur more than once, e.g. "
                f"{pairs}; each "
                "sample of a contributor's plan must have its own sample_index."
            )
    return BankRows(
        {k: np.ascontiguousarray(v) for k, v in arrays.items()},
        np.ascontiguousarray(index, dtype=np.int64),
        np.ascontiguousarray(sample, dtype=np.int64),
        np.ascontiguousarray(seeds, dtype=np.int64),
        list(ids),
        dict(n_examples),
    )


def bank_rows(
    features: Mapping[str, Any],
    contributors: Sequence[Any] | np.ndarray,
    n_examples: Mapping[Any, Any] | None = None,
    sample_index: Sequence[int] | np.ndarray | None = None,
    seed: Sequence[int] | np.ndarray | None = None,
) -> BankRows:
    """Check per-sample ``features`` and their bookkeeping and put them in plan order.

    Arguments as for :class:`~surrogateshap.bank.ContributorBank`; every problem is a ValueError
    naming the array or the contributor.

    >>> rows = bank_rows({"score": np.array([0.5, 0.1, 0.9])}, ["b", "a", "b"], {"a": 1, "b": 2})
    >>> rows.contributor_ids, rows.contributor_index.tolist(), rows.sample_index.tolist()
    (['a', 'b'], [0, 1, 1], [0, 0, 1])
    """
    if not isinstance(features, Mapping) or not features:
        raise ValueError("features must be a non-empty mapping name -> array with one row per sample.")
    arrays = {_check_array_name(k): np.asarray(v) for k, v in features.items()}
    n = _common_length(arrays)
    ids, index, n_ex = _resolve_contributors(contributors, n_examples, n)
    sample = _running_index(index) if sample_index is None else _int_array(sample_index, n, "sample_index")
    seeds = np.full(n, -1, dtype=np.int64) if seed is None else _int_array(seed, n, "seed")
    return in_plan_order(arrays, index, ids, n_ex, sample, seeds)
