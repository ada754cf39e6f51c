"""Coalition masks and seeded coalition samplers.

A coalition is a row of a ``(k, n)`` bool mask array. Every sampler returns a
:class:`CoalitionSample` whose first two rows are the empty and the full coalition
(they count toward the budget), followed by distinct sampled coalitions.

Design: sizes are *stratified*. A sampler is a distribution ``P(s)`` over coalition
sizes ``s = 1..n-1`` followed by a uniform subset of that size. Instead of drawing sizes
i.i.d. and discarding duplicates (whose inclusion probabilities are intractable), the
remaining budget is allocated to sizes in proportion to ``P(s)`` (capped at the number of
coalitions of that size, with the surplus moved to the other sizes), randomly rounded
with systematic sampling, and each size's quota is drawn uniformly *without replacement*.
The size histogram therefore matches ``P`` in expectation, no evaluation is wasted on a
duplicate, and each coalition's inclusion probability is known exactly
(``inclusion_prob``), which is what unbiased (Horvitz-Thompson) estimators need.
When the budget covers every coalition, the sample is the full enumeration.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .checks import check_budget, check_int
from .tables import CsvTable, parse_finite, read_csv_table

SAMPLERS = ("shapley", "uniform", "uniform_size", "leverage", "datamodel", "loo")
_ENUMERATE_LIMIT = 2_000_000


@dataclass(frozen=True)
class CoalitionSample:
    """Sampled coalitions with their design.

    Attributes
    ----------
    masks : (k, n) bool, row 0 the empty coalition, row 1 the full one.
    inclusion_prob : (k,) probability that the design includes each row (1 for forced rows).
    stratum : (k,) size stratum of each row (-1 for the forced empty/full rows).
    unit : (k,) sampling unit; the two rows of a complementary pair share a unit id.
    sampler : name of the sampler.
    """

    masks: np.ndarray
    inclusion_prob: np.ndarray
    stratum: np.ndarray
    unit: np.ndarray
    sampler: str

    def __len__(self) -> int:
        return int(self.masks.shape[0])


def all_coalitions(n: int) -> np.ndarray:
    """All ``2**n`` coalitions as a bool array; row ``b`` holds player ``i`` iff bit ``i`` of ``b`` is set."""
    if n > 26:
        raise ValueError(f"refusing to enumerate 2**{n} coalitions; enumeration is for n <= 26.")
    codes = np.arange(2**n, dtype=np.int64)
    return ((codes[:, None] >> np.arange(n, dtype=np.int64)) & 1).astype(bool)


def leave_one_out_coalitions(n: int) -> np.ndarray:
    """The empty coalition, the full coalition, and the full coalition without each player."""
    masks = np.ones((n + 2, n), dtype=bool)
    masks[0] = False
    masks[2:][np.arange(n), np.arange(n)] = False
    return masks


def size_distribution(n: int, sampler: str, alpha: float = 0.5) -> np.ndarray:
    """The sampler's distribution over sizes, an array ``P`` of length ``n + 1`` (zero at 0 and n)."""
    if sampler not in SAMPLERS or sampler == "loo":
        raise ValueError(f"unknown size sampler {sampler!r}; choose one of {SAMPLERS[:-1]}.")
    p = np.zeros(n + 1, dtype=np.float64)
    if n < 2:
        return p
    sizes = np.arange(1, n)
    if sampler == "shapley":
        p[1:n] = (n - 1) / (sizes * (n - sizes))
    elif sampler == "uniform":
        p[1:n] = [math.comb(n, int(s)) for s in sizes]
    elif sampler in ("uniform_size", "leverage"):
        p[1:n] = 1.0
    elif sampler == "datamodel":
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"datamodel alpha must lie strictly between 0 and 1, got {alpha}.")
        size = int(round(alpha * n))
        if not 1 <= size <= n - 1:
            raise ValueError(
                f"datamodel alpha={alpha} keeps round(alpha*n)={size} of {n} players; choose alpha so that "
                "between 1 and n-1 players are kept."
            )
        p[size] = 1.0
    return p / p.sum()


@dataclass(frozen=True)
class _Stratum:
    size: int  # coalition size of the unit's first member
    capacity: int  # number of distinct units
    weight: float  # share of the size distribution
    paired: bool  # unit = (coalition, complement)
    fix_first: bool  # unit canonicalised by containing player 0 (pairs within size n/2)


def _strata(n: int, p: np.ndarray, paired: bool) -> list[_Stratum]:
    strata = []
    for s in range(1, n):
        if paired:
            if s > n - s:
                continue
            if s == n - s:
                strata.append(_Stratum(s, math.comb(n, s) // 2, float(p[s]), True, True))
            else:
                strata.append(_Stratum(s, math.comb(n, s), float(p[s] + p[n - s]), True, False))
        else:
            strata.append(_Stratum(s, math.comb(n, s), float(p[s]), False, False))
    return [st for st in strata if st.weight > 0]


def _water_fill(capacity: np.ndarray, weight: np.ndarray, total: float) -> np.ndarray:
    """Expected units per stratum: proportional to weight, capped at capacity, summing to total."""
    alloc = np.zeros_like(weight)
    free = weight > 0
    remaining = float(total)
    while free.any():
        lam = remaining / weight[free].sum()
        over = free & (lam * weight >= capacity)
        if not over.any():
            alloc[free] = lam * weight[free]
            break
        alloc[over] = capacity[over]
        remaining -= capacity[over].sum()
        free &= ~over
    return alloc


def _systematic_round(expected: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Integers with E[m_s] = expected_s, each the floor or ceiling, summing to round(sum)."""
    cum = np.concatenate([[0.0], np.cumsum(expected)])
    offset = rng.random()
    counts = np.floor(cum[1:] - offset + 1.0 - 1e-9) - np.floor(cum[:-1] - offset + 1.0 - 1e-9)
    return np.maximum(counts, 0).astype(np.int64)


def _distinct_subsets(n: int, size: int, count: int, fix_first: bool, rng: np.random.Generator) -> np.ndarray:
    """``count`` distinct uniformly random subsets of the given size (as bool rows)."""
    pool = np.arange(1, n) if fix_first else np.arange(n)
    pick = size - 1 if fix_first else size
    capacity = math.comb(pool.size, pick)
    out = np.zeros((count, n), dtype=bool)
    if count == 0:
        return out
    if capacity <= min(4 * count, _ENUMERATE_LIMIT):
        chosen = rng.choice(capacity, size=count, replace=False)
        combos = list(itertools.combinations(pool.tolist(), pick))
        for row, idx in enumerate(chosen):
            out[row, list(combos[idx])] = True
    else:
        seen: set[bytes] = set()
        rows: list[np.ndarray] = []
        while len(rows) < count:
            draws = np.argsort(rng.random((2 * (count - len(rows)) + 8, pool.size)), axis=1)[:, :pick]
            for members in draws:
                mask = np.zeros(n, dtype=bool)
                mask[pool[members]] = True
                key = np.packbits(mask).tobytes()
                if key not in seen:
                    seen.add(key)
                    rows.append(mask)
                    if len(rows) == count:
                        break
        out[:] = np.stack(rows)
    if fix_first:
        out[:, 0] = True
    return out


def sample_coalitions(
    n: int,
    budget: int,
    sampler: str = "shapley",
    seed: int = 0,
    paired: bool = False,
    alpha: float = 0.5,
) -> CoalitionSample:
    """Sample at most ``budget`` distinct coalitions of ``n`` players, empty and full included.

    Parameters
    ----------
    sampler : ``"shapley"`` (size ``s`` with probability proportional to ``(n-1)/(s(n-s))``),
        ``"uniform"`` (every subset equally likely), ``"uniform_size"`` (uniform size, then
        uniform subset; ``"leverage"`` is the same design: the leverage scores of the Shapley
        regression are uniform over sizes), ``"datamodel"`` (every coalition keeps
        ``round(alpha * n)`` players) or ``"loo"`` (leave-one-out, ``n + 2`` coalitions,
        budget ignored).
    paired : add each sampled coalition's complement (both count toward the budget).
    seed : every random draw comes from ``numpy.random.default_rng(seed)``.
    """
    n = check_int(n, "the number of players", 1)
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {SAMPLERS}.")
    if sampler == "loo":
        masks = leave_one_out_coalitions(n)
        if n == 1:
            masks = masks[:2]
        k = masks.shape[0]
        return CoalitionSample(masks, np.ones(k), np.full(k, -1), np.arange(k), sampler)
    if budget is None:
        raise ValueError("budget must be an integer of at least 2, got None.")
    budget = check_budget(budget)
    rng = np.random.default_rng(seed)
    p = size_distribution(n, sampler, alpha)
    strata = _strata(n, p, paired)
    cost = 2 if paired else 1
    capacity = np.array([st.capacity for st in strata], dtype=np.float64)
    weight = np.array([st.weight for st in strata], dtype=np.float64)
    total_units = min((budget - 2) // cost, int(capacity.sum()) if strata else 0)
    expected = _water_fill(capacity, weight, total_units) if total_units > 0 else np.zeros(len(strata))
    counts = _systematic_round(expected, rng) if total_units > 0 else np.zeros(len(strata), dtype=np.int64)

    masks = [np.zeros((1, n), dtype=bool), np.ones((1, n), dtype=bool)]
    probs = [np.ones(2)]
    stratum_ids = [np.full(2, -1)]
    units = [np.arange(2)]
    next_unit = 2
    for sid, (st, m, e) in enumerate(zip(strata, counts, expected)):
        if m == 0:
            continue
        first = _distinct_subsets(n, st.size, int(m), st.fix_first, rng)
        block = np.concatenate([first, ~first]) if st.paired else first
        unit_ids = np.arange(next_unit, next_unit + m)
        next_unit += m
        masks.append(block)
        probs.append(np.full(block.shape[0], e / st.capacity))
        stratum_ids.append(np.full(block.shape[0], sid))
        units.append(np.concatenate([unit_ids, unit_ids]) if st.paired else unit_ids)
    return CoalitionSample(
        masks=np.concatenate(masks),
        inclusion_prob=np.concatenate(probs),
        stratum=np.concatenate(stratum_ids),
        unit=np.concatenate(units),
        sampler=sampler,
    )


def nested_coalitions(
    n: int, budget: int, sampler: str = "shapley", seed: int = 0, paired: bool = False
) -> CoalitionSample:
    """:func:`sample_coalitions` of ``budget``, its rows reordered so that every prefix is a sample too.

    The empty and the full coalition come first; then the sampling units in the order of an arrival
    time ``(k + u_s) / P_s`` (the ``k``-th unit of size stratum ``s``, ``u_s`` uniform, ``P_s`` the
    stratum's share of the size distribution). A prefix of ``b`` rows therefore holds, per size,
    ``min(capacity, b * P_s)`` coalitions up to rounding: the allocation :func:`sample_coalitions`
    gives at budget ``b``, each size's coalitions still a uniform draw without replacement. This is
    what sampling in rounds needs: a round's coalitions include every earlier round's. Cut a prefix
    at a unit boundary (``unit`` changes) so that a pair stays whole. ``inclusion_prob`` is the
    whole sample's, not a prefix's.

    >>> sample = nested_coalitions(10, 64, seed=0, paired=True)
    >>> head = sample.masks[:32]
    >>> len({row.tobytes() for row in head}), bool((head[:2].sum(axis=1) == [0, 10]).all())
    (32, True)
    """
    sample = sample_coalitions(n, budget, sampler, seed=seed, paired=paired)
    if sampler == "loo":
        return sample
    weight = np.array([st.weight for st in _strata(n, size_distribution(n, sampler), paired)])
    rng = np.random.default_rng([seed, 1])  # a stream of its own: the coalitions are those of sample_coalitions
    offset = rng.random(len(weight))
    units, first = np.unique(sample.unit, return_index=True)
    unit_stratum = sample.stratum[first]
    arrival = np.full(units.size, -np.inf)  # the empty and the full coalition first
    for s in np.unique(unit_stratum[unit_stratum >= 0]):
        members = np.flatnonzero(unit_stratum == s)  # units in the order they were drawn: a uniform order
        arrival[members] = (np.arange(members.size) + offset[s]) / weight[s]
    unit_rank = np.empty(units.size, np.int64)
    unit_rank[np.argsort(arrival, kind="stable")] = np.arange(units.size)
    order = np.argsort(unit_rank[np.searchsorted(units, sample.unit)], kind="stable")
    return CoalitionSample(sample.masks[order], sample.inclusion_prob[order], sample.stratum[order],
                           sample.unit[order], sample.sampler)


_MASK_FIELDS = {"0": False, "1": True, "0.0": False, "1.0": True}


@dataclass(frozen=True)
class CoalitionValues:
    """Coalitions evaluated elsewhere (retraining runs, an external pipeline), read by :func:`read_coalition_values`.

    Attributes
    ----------
    players : contributor ids, the order of the mask columns.
    names : one name per coalition (the ``coalition`` column, or ``c000``, ``c001``...).
    masks : (k, n) bool.
    values : (k,) float, finite.
    """

    players: list[str]
    names: list[str]
    masks: np.ndarray
    values: np.ndarray


def _coalition_table(path: str | Path, contributor_ids: Sequence[str] | None, value_column: str | None,
                     what: str) -> tuple[CsvTable, list[str], list[str], np.ndarray]:
    table = read_csv_table(path, what, "Give a CSV with one 0/1 column per contributor.")
    header = table.header
    if value_column is not None and value_column not in header:
        raise ValueError(f"{what} {table.path} has no {value_column!r} column (columns: {header[:8]}); add one "
                         "with each coalition's utility.")
    if contributor_ids is None:
        contributor_ids = [c for c in header if c not in ("coalition", value_column)]
        if not contributor_ids:
            raise ValueError(f"{what} {table.path} has no contributor column; add one 0/1 column per contributor.")
    missing = [c for c in contributor_ids if c not in header]
    if missing:
        raise ValueError(f"{what} {table.path} has no column for contributor(s) {missing[:5]}; add one 0/1 column "
                         "per contributor.")
    if not table.rows:
        raise ValueError(f"{what} {table.path} has a header but no rows; give one row per coalition.")
    index = [header.index(c) for c in contributor_ids]
    masks = np.zeros((len(table.rows), len(index)), bool)
    for r, (line, fields) in enumerate(table.rows):
        for c, j in enumerate(index):
            flag = _MASK_FIELDS.get(fields[j])
            if flag is None:
                raise ValueError(f"{table.where(line, header[j])}: {fields[j]!r} is not 0 or 1; mark each "
                                 "contributor 1 (in the coalition) or 0 (out).")
            masks[r, c] = flag
    if "coalition" in header:
        names = table.column("coalition")
        lines = [line for line, _ in table.rows]
        first: dict[str, int] = {}
        for name, line in zip(names, lines):
            if not name:
                raise ValueError(f"{table.where(line, 'coalition')}: the name is empty; name every coalition "
                                 "or drop the column.")
            if name in first:
                raise ValueError(f"{table.where(line, 'coalition')}: name {name!r} is used again (first on line "
                                 f"{first[name]}); coalition names must be unique.")
            first[name] = line
    else:
        names = [f"c{i:03d}" for i in range(len(table.rows))]
    return table, names, list(contributor_ids), masks


def read_coalitions(
    path: str | Path, contributor_ids: Sequence[str] | None = None
) -> tuple[list[str], np.ndarray]:
    """Coalition names and masks ``(k, n)`` from a CSV with one 0/1 column per contributor.

    An optional ``coalition`` column names the rows (default ``c000``, ``c001``...). With
    ``contributor_ids`` every contributor must have a column and other columns (e.g. ``value``)
    are ignored; without, every column but ``coalition`` is a contributor. Every defect of the
    file (see :mod:`surrogateshap.tables`, a field other than 0/1, a repeated name) is one line
    naming the line and column.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "coalitions.csv"
    >>> _ = path.write_text("coalition,a,b\\nnone,0,0\\nall,1,1\\n")
    >>> read_coalitions(path)
    (['none', 'all'], array([[False, False],
           [ True,  True]]))
    """
    _, names, _, masks = _coalition_table(path, contributor_ids, None, "coalitions file")
    return names, masks


def read_coalition_values(path: str | Path, value_column: str = "value") -> CoalitionValues:
    """Coalitions and their values from a CSV: one 0/1 column per contributor and a ``value`` column.

    Values must be finite numbers. A coalition listed twice with the same value is kept once; with
    different values (two runs of one coalition) it is an error naming both lines: average them
    first, or keep the run you trust.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "values.csv"
    >>> _ = path.write_text("a,b,value\\n0,0,0\\n1,1,3.5\\n1,1,3.5\\n")
    >>> table = read_coalition_values(path)
    >>> table.players, table.names, table.values
    (['a', 'b'], ['c000', 'c001'], array([0. , 3.5]))
    """
    what = "coalition values file"
    table, names, players, masks = _coalition_table(path, None, value_column, what)
    values = np.array([
        parse_finite(text, table.where(line, value_column),
                     "give every coalition's utility as a number (drop the row of a failed evaluation).")
        for (line, _), text in zip(table.rows, table.column(value_column))
    ])
    limit = float(np.finfo(np.float32).max)  # XGBoost fits float32 labels
    for (line, _), value in zip(table.rows, values):
        if abs(value) > limit:
            raise ValueError(f"{table.where(line, value_column)}: {float(value)!r} is beyond float32's range "
                             "(about 3.4e38), which the surrogate fits in; rescale the utility.")
    keep: list[int] = []
    first: dict[bytes, int] = {}
    for r, (line, _) in enumerate(table.rows):
        key = np.packbits(masks[r]).tobytes()
        if key not in first:
            first[key] = r
            keep.append(r)
        elif values[first[key]] != values[r]:
            earlier = table.rows[first[key]][0]
            raise ValueError(
                f"{table.where(line)}: the coalition of line {earlier} again, with value {float(values[r])!r} "
                f"instead of {float(values[first[key]])!r}; give each coalition once (average repeated runs first)."
            )
    return CoalitionValues(players, [names[r] for r in keep], masks[keep], values[keep])
