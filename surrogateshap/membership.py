"""Soft membership: contributors who share a condition.

The paper's proxy removes a contributor by removing its conditions, so two contributors
holding the same label or caption always get the same value. Here the conditions are grouped
into **units**: the conditions held by the same set of contributors. A unit held by one
contributor is that contributor (named by its id, so a registry without shared conditions
gives exactly the plain proxy's bank); a shared unit gets its own id. The bank is generated
per unit, and each sample ``x`` of unit ``u`` carries a responsibility ``r_i(x) = P(i | x, u)``
for each holder ``i`` (``surrogateshap.responsibility`` fits it).

The full model's unit distribution is the mixture ``sum_i n_iu q_iu(x) / n_u``; retraining on
``S`` keeps ``S``'s components. So coalition ``S`` weighs sample ``x`` of unit ``u`` by
``pi_S(u) rho_S(x) / sum_{x' in u} rho_S(x')`` with ``rho_S = sum_{i in S} r_i`` and
``pi_S(u) = n_Su / n_S`` its data share (self-normalised importance weights). That is linear
in per-(contributor, unit) **cell** statistics: the metrics keep one column per cell, fed
with ``r_i(x)`` as membership, and cell ``(i, u)`` gets per-unit weight
``pi_S(u) / sum_{j in S} count_ju`` for ``i`` in ``S``. With one holder per unit and ``r = 1``
this is exactly ``ContributorMetric.coalition_alpha`` of the plain proxy.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse

from .contributors import ContributorRegistry, Example

__all__ = ["ConditionUnits", "SoftMembership", "condition_units"]


@dataclass(frozen=True)
class ConditionUnits:
    """Conditions grouped by the set of contributors holding them.

    Attributes
    ----------
    registry : a registry with one "contributor" per unit (generate the bank on it); its
        examples keep their ids and conditions.
    contributor_ids : the players, in the original registry's order.
    unit_ids : the units, in ``registry`` order.
    counts : (C, U) training examples of contributor ``i`` in unit ``u``.
    contributors : the original registry (examples with their contributors).
    """

    registry: ContributorRegistry
    contributor_ids: list[str]
    unit_ids: list[str]
    counts: np.ndarray
    contributors: ContributorRegistry

    @property
    def shared(self) -> bool:
        """Whether some unit has more than one holder (otherwise soft = plain membership)."""
        return bool(((self.counts > 0).sum(axis=0) > 1).any())

    def holders(self, unit: int) -> np.ndarray:
        """Indices of the contributors holding unit ``unit``."""
        return np.flatnonzero(self.counts[:, unit] > 0)


def _shared_unit_id(conditions: Sequence[int | str], holders: Sequence[str], kind: str) -> str:
    if kind == "label":
        return "label:" + "+".join(str(c) for c in sorted(conditions))
    return "shared:" + "+".join(holders)


def condition_units(registry: ContributorRegistry) -> ConditionUnits:
    """Group ``registry``'s conditions into units by the set of contributors that hold them."""
    ids = registry.contributor_ids
    holders: dict[int | str, set[str]] = {}
    for ex in registry.examples:
        holders.setdefault(ex.condition, set()).add(ex.contributor)
    order = {cid: i for i, cid in enumerate(ids)}
    key_of = {cond: tuple(sorted(h, key=order.__getitem__)) for cond, h in holders.items()}
    conditions_of: dict[tuple[str, ...], list[int | str]] = {}
    for cond, key in key_of.items():
        conditions_of.setdefault(key, []).append(cond)
    name = {
        key: key[0] if len(key) == 1 else _shared_unit_id(conds, key, registry.condition_kind)
        for key, conds in conditions_of.items()
    }
    clash = sorted(set(name[k] for k in name if len(k) > 1) & set(ids))
    if clash:
        raise ValueError(f"contributor ids {clash} collide with shared-unit names; rename those contributors.")
    examples = [Example(ex.example_id, name[key_of[ex.condition]], ex.condition) for ex in registry.examples]
    unit_registry = ContributorRegistry(
        examples, registry.condition_kind, num_labels=registry.num_labels, source=registry.source
    )
    unit_ids = unit_registry.contributor_ids
    column = {u: k for k, u in enumerate(unit_ids)}
    counts = np.zeros((len(ids), len(unit_ids)), dtype=np.float64)
    for ex in registry.examples:
        counts[order[ex.contributor], column[name[key_of[ex.condition]]]] += 1
    return ConditionUnits(unit_registry, list(ids), list(unit_ids), counts, registry)


class SoftMembership:
    """Responsibilities of the contributors for the samples of a unit bank.

    Parameters
    ----------
    contributor_ids : the players.
    unit_ids : the bank's units (``bank.contributor_ids`` of a bank generated per unit).
    counts : (C, U) training examples of each contributor in each unit.
    unit_index : (N,) unit of each bank sample (``bank.contributor_index``).
    responsibility : (N, C) ``P(contributor | sample, unit)``, dense or ``scipy.sparse``: rows
        sum to 1 and are 0 outside the holders of the sample's unit.

    ``responsibility`` is kept as a ``scipy.sparse.csr_array``: a sample has as many entries as
    its unit has holders, so memory grows with N x (holders per unit), not N x C (1e5 samples
    and 1000 contributors would be 0.8 GB dense).
    """

    def __init__(
        self,
        contributor_ids: Sequence[str],
        unit_ids: Sequence[str],
        counts: np.ndarray,
        unit_index: np.ndarray,
        responsibility: np.ndarray | sparse.sparray | sparse.spmatrix,
    ) -> None:
        self.contributor_ids = [str(c) for c in contributor_ids]
        self.unit_ids = [str(u) for u in unit_ids]
        c, u = len(self.contributor_ids), len(self.unit_ids)
        self.counts = np.asarray(counts, dtype=np.float64)
        if self.counts.shape != (c, u) or (self.counts < 0).any():
            raise ValueError(f"counts must be non-negative of shape ({c}, {u}), got {self.counts.shape}.")
        self.unit_index = np.asarray(unit_index, dtype=np.int64)
        n = self.unit_index.shape[0]
        if self.unit_index.ndim != 1 or (n and (self.unit_index.min() < 0 or self.unit_index.max() >= u)):
            raise ValueError(f"unit_index must be (N,) indices into the {u} units.")
        if np.shape(responsibility) != (n, c):
            raise ValueError(
                f"responsibility must have shape ({n}, {c}) (samples x contributors), got {np.shape(responsibility)}."
            )
        resp = sparse.csr_array(responsibility, dtype=np.float64)
        resp.sum_duplicates()
        resp.eliminate_zeros()
        if n and (
            not np.isfinite(resp.data).all() or (resp.data < 0).any() or not np.allclose(resp.sum(axis=1), 1.0)
        ):
            raise ValueError("responsibility rows must be non-negative and sum to 1.")
        entries = resp.tocoo()
        rows, who = entries.row, entries.col
        outside = self.counts[who, self.unit_index[rows]] <= 0
        if outside.any():
            k = int(np.flatnonzero(outside)[0])
            raise ValueError(
                f"sample {rows[k]} of unit {self.unit_ids[self.unit_index[rows[k]]]!r} gives responsibility to "
                f"{self.contributor_ids[who[k]]!r}, which holds no training example of that unit."
            )
        self.responsibility = resp
        # cells: the (contributor, unit) pairs with training data, one metric column each
        self.cell_contributor, self.cell_unit = np.nonzero(self.counts)
        # np.nonzero lists cells in row-major order, so their flat keys are sorted (searchsorted)
        self._cell_key = self.cell_contributor * u + self.cell_unit
        cell = np.arange(self.cell_contributor.size)
        self._cell_in_unit = sparse.csr_array((np.ones(cell.size), (cell, self.cell_unit)), shape=(cell.size, u))

    @classmethod
    def shares(cls, units: ConditionUnits, unit_index: np.ndarray) -> SoftMembership:
        """Every sample's responsibilities = its unit's data shares ``n_iu / n_u``: the paper's proxy
        (a coalition keeps a unit's samples uniformly, weighted by its data there); with one holder
        per unit this is exactly the plain contributor bank's game."""
        unit_index = np.asarray(unit_index, dtype=np.int64)
        share = sparse.csr_array(units.counts.T / units.counts.sum(axis=0)[:, None])  # (U, C)
        return cls(units.contributor_ids, units.unit_ids, units.counts, unit_index, share[unit_index])

    def save(self, path: str | Path) -> Path:
        """Write the membership to an ``.npz`` (responsibilities as sparse COO triplets), atomically."""
        from .io import atomic_write_bytes

        entries = self.responsibility.tocoo()
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer, rows=entries.row, cols=entries.col, values=entries.data, unit_index=self.unit_index,
            counts=self.counts, ids=np.array(json.dumps([self.contributor_ids, self.unit_ids])),
        )
        return atomic_write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> SoftMembership:
        """Read a membership written by :meth:`save`."""
        with np.load(path) as f:
            contributor_ids, unit_ids = json.loads(str(f["ids"]))
            shape = (f["unit_index"].size, len(contributor_ids))
            resp = sparse.coo_array((f["values"], (f["rows"], f["cols"])), shape=shape)
            return cls(contributor_ids, unit_ids, f["counts"], f["unit_index"], resp)

    @property
    def n_cells(self) -> int:
        """Number of (contributor, unit) cells, i.e. metric columns."""
        return int(self.cell_contributor.size)

    def __len__(self) -> int:
        return int(self.unit_index.shape[0])

    def cell_matrix(self) -> sparse.csr_array:
        """(N, n_cells) sparse membership of each sample in each cell: ``r_i(x)`` at cell ``(i, unit(x))``."""
        entries = self.responsibility.tocoo()
        key = entries.col.astype(np.int64) * len(self.unit_ids) + self.unit_index[entries.row]  # no int32 overflow
        cells = np.searchsorted(self._cell_key, key)
        return sparse.csr_array((entries.data, (entries.row, cells)), shape=(len(self), self.n_cells))

    def contributor_mass(self) -> np.ndarray:
        """(C,) responsibility mass of each contributor over the bank."""
        return np.asarray(self.responsibility.sum(axis=0), dtype=np.float64).ravel()

    def coalition_alpha(self, masks: np.ndarray, cell_count: np.ndarray) -> np.ndarray:
        """Per-unit cell weights (k, n_cells) of coalitions ``masks`` (k, C), given each cell's mass.

        Cell ``(i, u)`` with ``i`` in S gets ``pi_S(u) / sum_{j in S} count_ju``; a member without any
        responsibility mass in the bank, or a unit in which S holds data but no responsibility mass,
        is an error (the bank cannot represent S there).
        """
        masks = np.asarray(masks, dtype=bool)
        cell_count = np.asarray(cell_count, dtype=np.float64)
        mass = np.bincount(self.cell_contributor, weights=cell_count, minlength=len(self.contributor_ids))
        lacking = masks & (mass <= 0)
        if lacking.any():
            row, who = np.argwhere(lacking)[0]
            raise ValueError(
                f"contributor {self.contributor_ids[who]!r} is in coalition {int(row)} but has no samples in the "
                "bank; generate its samples (rerun generation) or drop it from the players."
            )
        n_su = masks.astype(np.float64) @ self.counts  # (k, U)
        total = n_su.sum(axis=1, keepdims=True)
        if (total <= 0).any():
            raise ValueError("a coalition without training data has no mixture; its value is v_empty.")
        in_s = masks[:, self.cell_contributor]  # (k, n_cells)
        mass = (in_s * cell_count) @ self._cell_in_unit  # (k, U): S's responsibility mass per unit
        lacking = (n_su > 0) & (mass <= 0)
        if lacking.any():
            row, unit = np.argwhere(lacking)[0]
            raise ValueError(
                f"coalition {row} holds data in unit {self.unit_ids[unit]!r} but none of the unit's bank "
                "samples is attributed to its members; generate samples for that unit."
            )
        per_unit = np.divide(n_su / total, mass, out=np.zeros_like(n_su), where=mass > 0)
        return in_s * per_unit[:, self.cell_unit]
