"""ContributorBank: the per-sample arrays of a generation run in memory, keyed by contributor, in plan order.

A bank holds, for every generated sample, any number of named per-sample arrays (features,
logits, scores; first dimension N), the contributor it was generated for, its index in that
contributor's generation plan (``sample_index``) and its seed (``-1`` = unknown); row order and
contributor order are those of :mod:`surrogateshap.bank.rows`. Contributors who share
conditions are handled by generating the bank per unit of shared conditions and passing a
``SoftMembership`` to ``ProxyGame`` (see ``surrogateshap.membership``). The bank is saved to and
loaded from a folder of checksummed shards (:mod:`surrogateshap.bank.storage`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..checks import check_int
from .rows import RESERVED_ARRAYS, BankRows, bank_rows, json_config
from .storage import ShardWriter, existing_rows, holds_bank, read_bank, remove_bank

__all__ = ["ContributorBank"]


class ContributorBank:
    """Per-sample arrays of a generation run, keyed by contributor, in plan order.

    Parameters
    ----------
    features : mapping name -> array with first dimension N (features, logits, scores...).
    contributors : length-N sequence of contributor ids (str or int, stored as str).
    n_examples : mapping id -> number of training examples of that contributor (the default
        game weights); its key order is the players' order. Default: samples per contributor.
    sample_index : (N,) ints, the sample's index in its contributor's plan. Default: running
        index within each contributor, in the given order.
    seed : (N,) ints, the seed each sample was generated with. Default: -1 (unknown).
    config : JSON-serialisable dict describing the run that produced the bank (saved with it).

    >>> bank = ContributorBank({"score": np.array([0.2, 0.4, 0.9])}, ["a", "b", "a"], {"a": 10, "b": 5})
    >>> bank.contributor_ids, bank["score"].tolist(), bank.sample_mass().tolist()
    (['a', 'b'], [0.2, 0.9, 0.4], [2.0, 1.0])
    """

    def __init__(
        self,
        features: Mapping[str, Any],
        contributors: Sequence[Any] | np.ndarray,
        n_examples: Mapping[Any, Any] | None = None,
        *,
        sample_index: Sequence[int] | np.ndarray | None = None,
        seed: Sequence[int] | np.ndarray | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        rows = bank_rows(features, contributors, n_examples, sample_index, seed)
        self._set(rows, {} if config is None else json_config(dict(config), "config"))

    def _set(self, rows: BankRows, config: dict[str, Any]) -> None:
        self._rows = rows
        self._config = config

    @classmethod
    def from_rows(cls, rows: BankRows, config: Mapping[str, Any] | None = None) -> ContributorBank:
        """A bank holding ``rows`` (already checked and in plan order, e.g. read from disk)."""
        bank = cls.__new__(cls)
        bank._set(rows, {} if config is None else json_config(dict(config), "config"))
        return bank

    # accessors ----------------------------------------------------------------------
    @property
    def rows(self) -> BankRows:
        """The arrays and bookkeeping the bank holds (what a shard stores)."""
        return self._rows

    @property
    def contributor_ids(self) -> list[str]:
        """Contributor ids (strings) in player order."""
        return list(self._rows.contributor_ids)

    @property
    def n_examples(self) -> dict[str, int | float]:
        """Training examples per contributor (the default game weights), in player order."""
        return dict(self._rows.n_examples)

    @property
    def config(self) -> dict[str, Any]:
        """The configuration of the run that produced the bank (a copy)."""
        return copy.deepcopy(self._config)

    @property
    def array_names(self) -> list[str]:
        """Names of the per-sample arrays (not counting the reserved bookkeeping arrays)."""
        return list(self._rows.arrays)

    @property
    def contributor_index(self) -> np.ndarray:
        """(N,) int64 index into ``contributor_ids`` of each sample (read-only)."""
        return _readonly(self._rows.contributor_index)

    @property
    def sample_index(self) -> np.ndarray:
        """(N,) int64 index of each sample in its contributor's plan (read-only)."""
        return _readonly(self._rows.sample_index)

    @property
    def seed(self) -> np.ndarray:
        """(N,) int64 seed of each sample, -1 where unknown (read-only)."""
        return _readonly(self._rows.seed)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, name: object) -> bool:
        return name in self._rows.arrays or name in RESERVED_ARRAYS

    def __getitem__(self, name: str) -> np.ndarray:
        """The per-sample array ``name`` (read-only), rows in plan order."""
        if name in self._rows.arrays:
            return _readonly(self._rows.arrays[name])
        if name in RESERVED_ARRAYS:
            return getattr(self, name)
        raise KeyError(
            f"the bank has no array {name!r}; it has {self.array_names} (+ {', '.join(RESERVED_ARRAYS)})."
        )

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}: {tuple(v.shape[1:])} {v.dtype}" for k, v in self._rows.arrays.items())
        return f"ContributorBank({len(self)} samples, {len(self._rows.contributor_ids)} contributors, {{{shapes}}})"

    def sample_mass(self) -> np.ndarray:
        """(C,) samples per contributor."""
        return np.bincount(self._rows.contributor_index, minlength=len(self._rows.contributor_ids)).astype(np.float64)

    def take(self, rows: np.ndarray) -> ContributorBank:
        """A bank with the rows at positions ``rows`` (increasing positions keep plan order)."""
        return ContributorBank.from_rows(self._rows.take(np.asarray(rows)), self._config)

    def select(self, contributors: Any) -> ContributorBank:
        """A bank with only the rows of ``contributors`` (one id or an iterable of ids).

        Player order and ``n_examples`` are kept.
        """
        wanted = [contributors] if isinstance(contributors, (str, int, np.integer)) else list(contributors)
        position = {cid: i for i, cid in enumerate(self._rows.contributor_ids)}
        idx = []
        for cid in wanted:
            if str(cid) not in position:
                raise KeyError(f"contributor {cid!r} is not in this bank; it has {self.contributor_ids[:20]}.")
            idx.append(position[str(cid)])
        return self.take(np.flatnonzero(np.isin(self._rows.contributor_index, idx)))

    def row_keys(self) -> set[tuple[str, int]]:
        """The set of (contributor id, sample_index) pairs held."""
        ids = self._rows.contributor_ids
        return {
            (ids[c], int(s))
            for c, s in zip(self._rows.contributor_index.tolist(), self._rows.sample_index.tolist(), strict=True)
        }

    # persistence --------------------------------------------------------------------
    def save(self, directory: str | Path, *, shard_rows: int | None = None, overwrite: bool = False) -> Path:
        """Write the bank to ``directory`` (shards + ``manifest.json``); return the folder.

        ``shard_rows`` caps the rows per shard (default: one shard). A folder that already holds
        a bank is refused unless ``overwrite=True`` (which removes its manifests and shards first).
        """
        directory = Path(directory)
        if holds_bank(directory):
            if not overwrite:
                raise ValueError(
                    f"{directory} already holds a contributor bank; pass overwrite=True to replace it "
                    "or choose "
                    "another folder (to add rows, use append_shard or ShardWriter)."
                )
            remove_bank(directory)
        n = len(self)
        step = n if shard_rows is None else check_int(shard_rows, "shard_rows", 1)
        writer = ShardWriter(directory, self.n_examples, config=self._config)
        writer.set_schema(self._rows)
        for start in range(0, n, max(step, 1)):
            writer.write(self._rows.take(np.arange(start, min(start + step, n))))
        return directory

    def append_shard(self, directory: str | Path, *, rank: int | None = None) -> Path | None:
        """Write this bank's rows as one more shard of the bank in ``directory`` (created if absent).

        ``rank`` names the DDP rank (its own manifest and shard names); returns the shard's path.
        """
        return ShardWriter(directory, self.n_examples, config=self._config, rank=rank).write(self._rows)

    @staticmethod
    def existing_rows(directory: str | Path, *, verify: bool = True) -> set[tuple[str, int]]:
        """The (contributor id, sample_index) rows already written in ``directory`` (see existing_rows)."""
        return existing_rows(directory, verify=verify)

    @classmethod
    def load(
        cls, directory: str | Path, *, expected_config: Mapping[str, Any] | None = None, verify: bool = True
    ) -> ContributorBank:
        """Load the bank in ``directory``: merge every manifest's shards in plan order.

        Checks each shard's size and (``verify=True``) sha256 against its manifest. Raises a
        ValueError naming the file for a missing, truncated, tampered or unreadable shard, a
        manifest of another format version, manifests that disagree, and (``expected_config``)
        a bank produced with a different config.
        """
        rows, config = read_bank(directory, expected_config=expected_config, verify=verify)
        return cls.from_rows(rows, config)


def _readonly(arr: np.ndarray) -> np.ndarray:
    view = arr.view()
    view.flags.writeable = False
    return view
