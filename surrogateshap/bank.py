"""ContributorBank: per-sample arrays of images generated per contributor, saved as checksummed shards.

A bank holds, for every generated sample, any number of named per-sample arrays (features,
logits, scores; first dimension N), the contributor it was generated for, its index in that
contributor's generation plan (``sample_index``) and its seed (``-1`` = unknown). Contributors
who share conditions are handled by generating the bank per unit of shared conditions and
passing a ``SoftMembership`` to ``ProxyGame`` (see ``surrogateshap.membership``).

Contributor order (the players' order in every game): the key order of ``n_examples`` when it
is given (it must cover every id in ``contributors``; a listed contributor without samples is
allowed and only reported when a coalition needs its samples); otherwise the order of first
appearance in ``contributors``, with ``n_examples`` = the number of samples of each contributor.
Ids are stored as strings (``str(id)``).

Rows are always kept in *plan order*: sorted by (contributor order, sample_index). A
(contributor, sample_index) pair may occur once in a bank.

On-disk format (a folder)::

    manifest.json                       single-process writer (``rank=None``)
    manifest.rank{r}.json               one manifest per DDP rank (no two processes share a file)
    shard-{i:05d}.safetensors           shards of the single-process writer
    shard-rank{r}-{i:05d}.safetensors   shards of rank r

Each shard is a safetensors file (``safetensors.numpy``) holding the named arrays plus
``__contributor_index__``, ``__sample_index__`` and ``__seed__`` (int64). Each manifest is JSON::

    {"format": "surrogateshap.contributor_bank", "format_version": 1, "library_version": "0.1.0",
     "rank": null, "contributor_ids": [...], "n_examples": {id: n, ...}, "config": {...},
     "arrays": {name: {"dtype": "float32", "shape": [2048]}, ...},
     "shards": [{"file": "shard-00000.safetensors", "rows": 256, "bytes": 2097272, "sha256": "..."}]}

Contributor indices in a shard refer to its manifest's ``contributor_ids``; all manifests of a
folder must agree on ids, ``n_examples``, ``config`` and array schema. Every file is written to a
temporary name and renamed (``surrogateshap.io``); a shard is written before the manifest that
lists it, so an interrupted write leaves at most an unlisted shard, which is ignored and later
overwritten. Loading merges all manifests' shards in plan order. A row written twice (e.g. a
rank re-ran a batch after a crash) is kept once if both copies are identical byte for byte;
copies that differ raise a ValueError naming both shards. Manifests written before bank-level
soft membership was retired carry ``"membership": false``, which is ignored; ``true`` is refused.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy

from .io import atomic_write_bytes, atomic_write_json

FORMAT = "surrogateshap.contributor_bank"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
# bookkeeping arrays, stored as __name__ in shards (a retired "membership" shard key only ever
# appeared with the manifest flag "membership": true, which is refused on read)
RESERVED_ARRAYS = ("contributor_index", "sample_index", "seed")
_SHARD_KEY = {name: f"__{name}__" for name in RESERVED_ARRAYS}
_RANK_MANIFEST = re.compile(r"^manifest\.rank(\d+)\.json$")
_SHARD_INDEX = re.compile(r"-(\d+)\.safetensors$")

__all__ = ["ContributorBank", "FORMAT_VERSION", "ShardWriter", "check_bank_folder", "existing_rows"]


# ----------------------------------------------------------------------------- helpers
def _json_roundtrip(obj: Any, what: str) -> Any:
    try:
        return json.loads(json.dumps(obj))
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{what} must be JSON-serialisable (dicts, lists, str, numbers, bool, None): {err}"
        ) from err


def _normalise_n_examples(n_examples: Mapping[Any, Any]) -> dict[str, int | float]:
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


def _schema(arrays: Mapping[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    return {name: {"dtype": arr.dtype.name, "shape": list(arr.shape[1:])} for name, arr in arrays.items()}


def _library_version() -> str:
    import surrogateshap  # late import: the package imports this module while it initialises

    return str(getattr(surrogateshap, "__version__", "unknown"))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------- the bank
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
        if not isinstance(features, Mapping) or not features:
            raise ValueError("features must be a non-empty mapping name -> array with one row per sample.")
        arrays = {_check_array_name(k): np.asarray(v) for k, v in features.items()}
        n = self._common_length(arrays)
        ids, index, n_ex = self._resolve_contributors(contributors, n_examples, n)
        sample = (
            _running_index(index) if sample_index is None else _int_array(sample_index, n, "sample_index")
        )
        seeds = np.full(n, -1, dtype=np.int64) if seed is None else _int_array(seed, n, "seed")
        cfg = {} if config is None else _json_roundtrip(dict(config), "config")
        self._init(arrays, index, ids, n_ex, sample, seeds, cfg, check_duplicates=True)

    # construction ------------------------------------------------------------------
    @staticmethod
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

    @staticmethod
    def _resolve_contributors(
        contributors: Any, n_examples: Mapping[Any, Any] | None, n: int
    ) -> tuple[list[str], np.ndarray, dict[str, int | float]]:
        n_ex = None if n_examples is None else _normalise_n_examples(n_examples)
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

    def _init(
        self,
        arrays: dict[str, np.ndarray],
        index: np.ndarray,
        ids: list[str],
        n_examples: dict[str, int | float],
        sample: np.ndarray,
        seeds: np.ndarray,
        config: dict[str, Any],
        check_duplicates: bool,
    ) -> None:
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
        self._arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
        self._contributor_index = np.ascontiguousarray(index, dtype=np.int64)
        self._sample_index = np.ascontiguousarray(sample, dtype=np.int64)
        self._seed = np.ascontiguousarray(seeds, dtype=np.int64)
        self._ids = list(ids)
        self._n_examples = dict(n_examples)
        self._config = config

    @classmethod
    def _from_parts(
        cls, arrays, index, ids, n_examples, sample, seeds, config, check_duplicates=True
    ):
        bank = cls.__new__(cls)
        bank._init(dict(arrays), index, list(ids), dict(n_examples), sample, seeds, config, check_duplicates)
        return bank

    def _take(self, rows: np.ndarray) -> ContributorBank:
        return ContributorBank._from_parts(
            {k: v[rows] for k, v in self._arrays.items()},
            self._contributor_index[rows],
            self._ids,
            self._n_examples,
            self._sample_index[rows],
            self._seed[rows],
            copy.deepcopy(self._config),
            check_duplicates=False,
        )

    # accessors ----------------------------------------------------------------------
    @property
    def contributor_ids(self) -> list[str]:
        """Contributor ids (strings) in player order."""
        return list(self._ids)

    @property
    def n_examples(self) -> dict[str, int | float]:
        """Training examples per contributor (the default game weights), in player order."""
        return dict(self._n_examples)

    @property
    def config(self) -> dict[str, Any]:
        """The configuration of the run that produced the bank (a copy)."""
        return copy.deepcopy(self._config)

    @property
    def array_names(self) -> list[str]:
        """Names of the per-sample arrays (not counting the reserved bookkeeping arrays)."""
        return list(self._arrays)

    @property
    def contributor_index(self) -> np.ndarray:
        """(N,) int64 index into ``contributor_ids`` of each sample (read-only)."""
        return self._readonly(self._contributor_index)

    @property
    def sample_index(self) -> np.ndarray:
        """(N,) int64 index of each sample in its contributor's plan (read-only)."""
        return self._readonly(self._sample_index)

    @property
    def seed(self) -> np.ndarray:
        """(N,) int64 seed of each sample, -1 where unknown (read-only)."""
        return self._readonly(self._seed)

    @staticmethod
    def _readonly(arr: np.ndarray) -> np.ndarray:
        view = arr.view()
        view.flags.writeable = False
        return view

    def __len__(self) -> int:
        return int(self._contributor_index.shape[0])

    def __contains__(self, name: object) -> bool:
        return name in self._arrays or name in RESERVED_ARRAYS

    def __getitem__(self, name: str) -> np.ndarray:
        """The per-sample array ``name`` (read-only), rows in plan order."""
        if name in self._arrays:
            return self._readonly(self._arrays[name])
        if name in RESERVED_ARRAYS:
            return getattr(self, name)
        raise KeyError(
            f"the bank has no array {name!r}; it has {self.array_names} (+ {', '.join(RESERVED_ARRAYS)})."
        )

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}: {tuple(v.shape[1:])} {v.dtype}" for k, v in self._arrays.items())
        return f"ContributorBank({len(self)} samples, {len(self._ids)} contributors, {{{shapes}}})"

    def sample_mass(self) -> np.ndarray:
        """(C,) samples per contributor."""
        return np.bincount(self._contributor_index, minlength=len(self._ids)).astype(np.float64)

    def select(self, contributors: Any) -> ContributorBank:
        """A bank with only the rows of ``contributors`` (one id or an iterable of ids).

        Player order and ``n_examples`` are kept.
        """
        wanted = [contributors] if isinstance(contributors, (str, int, np.integer)) else list(contributors)
        position = {cid: i for i, cid in enumerate(self._ids)}
        idx = []
        for cid in wanted:
            if str(cid) not in position:
                raise KeyError(f"contributor {cid!r} is not in this bank; it has {self._ids[:20]}.")
            idx.append(position[str(cid)])
        return self._take(np.flatnonzero(np.isin(self._contributor_index, idx)))

    def row_keys(self) -> set[tuple[str, int]]:
        """The set of (contributor id, sample_index) pairs held."""
        return {
            (self._ids[c], int(s))
            for c, s in zip(self._contributor_index.tolist(), self._sample_index.tolist(), strict=True)
        }

    # persistence --------------------------------------------------------------------
    def save(self, directory: str | Path, *, shard_rows: int | None = None, overwrite: bool = False) -> Path:
        """Write the bank to ``directory`` (shards + ``manifest.json``); return the folder.

        ``shard_rows`` caps the rows per shard (default: one shard). A folder that already holds
        a bank is refused unless ``overwrite=True`` (which removes its manifests and shards first).
        """
        directory = Path(directory)
        if _manifest_paths(directory):
            if not overwrite:
                raise ValueError(
                    f"{directory} already holds a contributor bank; pass overwrite=True to replace it "
                    "or choose "
                    "another folder (to add rows, use append_shard or ShardWriter)."
                )
            for path in _manifest_paths(directory):
                path.unlink()
            for path in directory.glob("shard-*.safetensors"):
                path.unlink()
        writer = ShardWriter(directory, self._n_examples, config=self._config)
        n = len(self)
        step = n if not shard_rows else int(shard_rows)
        if step <= 0 and n:
            raise ValueError(f"shard_rows must be a positive integer, got {shard_rows!r}.")
        if n == 0:
            writer._set_schema(self)
        for start in range(0, n, max(step, 1)):
            writer.append_bank(self._take(np.arange(start, min(start + step, n))))
        return directory

    def append_shard(self, directory: str | Path, *, rank: int | None = None) -> Path | None:
        """Write this bank's rows as one more shard of the bank in ``directory`` (created if absent).

        ``rank`` names the DDP rank (its own manifest and shard names); returns the shard's path.
        """
        writer = ShardWriter(directory, self._n_examples, config=self._config, rank=rank)
        return writer.append_bank(self)

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
        directory = Path(directory)
        manifests = _read_manifests(directory)
        first_path, first = manifests[0]
        if expected_config is not None:
            _check_config(
                first["config"], _json_roundtrip(dict(expected_config), "expected_config"), first_path
            )
        schema = _bank_schema(manifests)
        if schema is None:
            raise ValueError(f"the bank in {directory} has no samples yet (its manifests list no shards).")
        parts, origin = [], []
        for path, manifest in manifests:
            for entry in manifest["shards"]:
                parts.append(_read_shard(directory, entry, path, manifest, verify))
                origin.append(entry["file"])
        keys = [*schema, *RESERVED_ARRAYS]
        if parts:
            merged = {k: np.concatenate([p[k] for p in parts]) for k in keys}
            shard_of_row = np.repeat(np.arange(len(parts)), [p["seed"].shape[0] for p in parts])
        else:
            merged = {
                name: np.zeros([0, *spec["shape"]], dtype=np.dtype(spec["dtype"]))
                for name, spec in schema.items()
            }
            merged.update({k: np.zeros(0, dtype=np.int64) for k in RESERVED_ARRAYS})
            shard_of_row = np.zeros(0, dtype=np.int64)
        merged = _dedupe(merged, shard_of_row, origin, first["contributor_ids"], directory)
        return cls._from_parts(
            {k: merged[k] for k in schema},
            merged["contributor_index"],
            first["contributor_ids"],
            first["n_examples"],
            merged["sample_index"],
            merged["seed"],
            first["config"],
            check_duplicates=False,
        )


# ----------------------------------------------------------------------------- writing
class ShardWriter:
    """Append shards to a bank folder, batch by batch, so a generation run can resume.

    Each writer owns one manifest: ``manifest.json`` (``rank=None``) or ``manifest.rank{r}.json``
    (DDP rank ``r``), so ranks never write the same file. Opening a folder that already has this
    manifest resumes it: ids, ``n_examples`` and ``config`` must match, and shards it lists that
    were deleted (e.g. after a checksum error) are dropped from it with a warning, so their rows
    count as missing and get regenerated. Use :func:`existing_rows` to skip rows already written.
    """

    def __init__(
        self,
        directory: str | Path,
        n_examples: Mapping[Any, Any],
        *,
        config: Mapping[str, Any] | None = None,
        rank: int | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.n_examples = _normalise_n_examples(n_examples)
        self.contributor_ids = list(self.n_examples)
        self.config = {} if config is None else _json_roundtrip(dict(config), "config")
        if rank is not None and (
            isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 0
        ):
            raise ValueError(f"rank must be None or a non-negative integer, got {rank!r}.")
        self.rank = None if rank is None else int(rank)
        self.manifest_path = self.directory / (MANIFEST_NAME if rank is None else f"manifest.rank{rank}.json")
        self.directory.mkdir(parents=True, exist_ok=True)
        check_bank_folder(self.directory, self.n_examples, self.config)
        if self.manifest_path.exists():
            manifest = _read_manifest(self.manifest_path)
            kept = [e for e in manifest["shards"] if (self.directory / e["file"]).exists()]
            if len(kept) != len(manifest["shards"]):
                gone = [e["file"] for e in manifest["shards"] if e not in kept]
                warnings.warn(
                    f"shards {gone} listed in {self.manifest_path} are missing; dropping them from the "
                    "manifest so "
                    "their rows are generated again.",
                    stacklevel=2,
                )
                manifest = {**manifest, "shards": kept}
                atomic_write_json(self.manifest_path, manifest)
        else:
            manifest = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "library_version": _library_version(),
                "rank": self.rank,
                "contributor_ids": self.contributor_ids,
                "n_examples": self.n_examples,
                "config": self.config,
                "arrays": None,
                "shards": [],
            }
            atomic_write_json(self.manifest_path, manifest)
        self._manifest = manifest

    def _set_schema(self, part: ContributorBank) -> None:
        schema = _schema(part._arrays)
        if self._manifest["arrays"] is None:
            self._manifest = {**self._manifest, "arrays": schema}
            atomic_write_json(self.manifest_path, self._manifest)
        elif self._manifest["arrays"] != schema:
            raise ValueError(
                f"these rows have arrays {schema} but the bank in {self.directory} stores "
                f"{self._manifest['arrays']}; every shard must carry the same arrays with the same dtypes "
                "and shapes."
            )

    def append(
        self,
        features: Mapping[str, Any],
        contributors: Sequence[Any] | np.ndarray,
        *,
        sample_index: Sequence[int] | np.ndarray,
        seed: Sequence[int] | np.ndarray | None = None,
    ) -> Path | None:
        """Write one shard with these rows (same arguments as ContributorBank); return its path."""
        part = ContributorBank(
            features,
            contributors,
            self.n_examples,
            sample_index=sample_index,
            seed=seed,
            config=self.config,
        )
        return self.append_bank(part)

    def append_bank(self, part: ContributorBank) -> Path | None:
        """Write the rows of ``part`` (same contributors) as one shard; None when it has no rows."""
        if part.contributor_ids != self.contributor_ids or part.n_examples != self.n_examples:
            raise ValueError(
                "the rows to append were made for other contributors or n_examples than this bank."
            )
        self._set_schema(part)
        if len(part) == 0:
            return None
        tensors = {k: v for k, v in part._arrays.items()}
        tensors[_SHARD_KEY["contributor_index"]] = part._contributor_index
        tensors[_SHARD_KEY["sample_index"]] = part._sample_index
        tensors[_SHARD_KEY["seed"]] = part._seed
        data = safetensors.numpy.save(
            {k: np.ascontiguousarray(v) for k, v in tensors.items()},
            metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION), "rank": str(self.rank)},
        )
        path = self.directory / self._next_shard_name()
        atomic_write_bytes(path, data)
        entry = {"file": path.name, "rows": len(part), "bytes": len(data), "sha256": _sha256(data)}
        manifest = {**self._manifest, "shards": [*self._manifest["shards"], entry]}
        atomic_write_json(self.manifest_path, manifest)
        self._manifest = manifest
        return path

    def _next_shard_name(self) -> str:
        used = [int(m.group(1)) for e in self._manifest["shards"] if (m := _SHARD_INDEX.search(e["file"]))]
        i = max(used, default=-1) + 1
        return (
            f"shard-{i:05d}.safetensors"
            if self.rank is None
            else f"shard-rank{self.rank}-{i:05d}.safetensors"
        )

    def existing_rows(self, *, verify: bool = True) -> set[tuple[str, int]]:
        """Rows already written in this folder, by any rank (see :func:`existing_rows`)."""
        return existing_rows(self.directory, verify=verify)


def check_bank_folder(
    directory: str | Path, n_examples: Mapping[Any, Any], config: Mapping[str, Any] | None = None
) -> None:
    """Raise a ValueError if ``directory`` holds a bank of other contributors, ``n_examples`` or config.

    Reads every manifest of the folder and writes nothing; a folder without a bank passes.
    """
    n_examples = _normalise_n_examples(n_examples)
    config = {} if config is None else _json_roundtrip(dict(config), "config")
    for path in _manifest_paths(Path(directory)):
        manifest = _read_manifest(path)
        if manifest["contributor_ids"] != list(n_examples) or manifest["n_examples"] != n_examples:
            raise ValueError(
                f"{path} was written for other contributors or n_examples than this run; write to a new "
                "folder, or delete the old bank to start over."
            )
        _check_config(manifest["config"], config, path)


def existing_rows(directory: str | Path, *, verify: bool = True) -> set[tuple[str, int]]:
    """The (contributor id, sample_index) pairs already written in ``directory``, over all ranks.

    Use it to resume generation: skip planned rows in this set. Shards that are listed but
    missing are skipped (their rows count as not written); a shard that fails its size or
    (``verify=True``) checksum test raises the same ValueError as :meth:`ContributorBank.load`.
    An absent folder or a folder without manifests has no rows.
    """
    directory = Path(directory)
    if not _manifest_paths(directory):
        return set()
    out: set[tuple[str, int]] = set()
    for path, manifest in _read_manifests(directory):
        ids = manifest["contributor_ids"]
        for entry in manifest["shards"]:
            if not (directory / entry["file"]).exists():
                continue
            part = _read_shard(directory, entry, path, manifest, verify)
            out.update(
                (ids[c], s)
                for c, s in zip(
                    part["contributor_index"].tolist(), part["sample_index"].tolist(), strict=True
                )
            )
    return out


# ----------------------------------------------------------------------------- reading
def _manifest_paths(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    ranked = sorted(
        ((int(m.group(1)), p) for p in directory.iterdir() if (m := _RANK_MANIFEST.match(p.name))),
        key=lambda t: t[0],
    )
    single = [directory / MANIFEST_NAME] if (directory / MANIFEST_NAME).is_file() else []
    return single + [p for _, p in ranked]


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(
            f"bank manifest {path} cannot be read ({err}); it is damaged: delete the bank folder and "
            "rerun generation."
        ) from err
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path} is not a contributor bank manifest (no 'format': {FORMAT!r}).")
    if data.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"bank manifest {path} has format version {data.get('format_version')!r} (written by "
            "surrogateshap "
            f"{data.get('library_version')!r}); this surrogateshap {_library_version()} reads format version "
            f"{FORMAT_VERSION}. Regenerate the bank with this version, or load it with the version that "
            "wrote it."
        )
    missing = [
        k
        for k in ("contributor_ids", "n_examples", "config", "arrays", "shards")
        if k not in data
    ]
    if missing:
        raise ValueError(f"bank manifest {path} lacks fields {missing}; it is damaged: regenerate the bank.")
    if data.get("membership"):  # older manifests carry "membership": false, which is ignored
        raise ValueError(
            f"bank manifest {path} stores a bank-level soft-membership matrix, which is no longer supported "
            "(bank-level soft membership was retired). Regenerate the bank per unit of shared conditions "
            "and give a SoftMembership to ProxyGame (`membership: {kind: soft}` in the config; see "
            "surrogateshap.membership)."
        )
    return data


def _read_manifests(directory: Path) -> list[tuple[Path, dict[str, Any]]]:
    paths = _manifest_paths(directory)
    if not paths:
        raise ValueError(
            f"no contributor bank in {directory}: it has no {MANIFEST_NAME} or manifest.rank*.json "
            "(write one with ContributorBank.save or ShardWriter)."
        )
    manifests = [(p, _read_manifest(p)) for p in paths]
    first_path, first = manifests[0]
    for path, other in manifests[1:]:
        for key in ("contributor_ids", "n_examples", "config"):
            if other[key] != first[key]:
                raise ValueError(
                    f"manifests {first_path.name} and {path.name} in {directory} disagree on {key}: "
                    "they come from "
                    "different runs. Keep the manifests (and shards) of one run only."
                )
    schemas = [(p, m["arrays"]) for p, m in manifests if m["arrays"] is not None]
    for path, schema in schemas[1:]:
        if schema != schemas[0][1]:
            raise ValueError(
                f"manifests {schemas[0][0].name} and {path.name} in {directory} store different arrays "
                f"({schemas[0][1]} vs {schema}); every shard of a bank must carry the same arrays."
            )
    return manifests


def _bank_schema(manifests: list[tuple[Path, dict[str, Any]]]) -> dict[str, Any] | None:
    """The array schema shared by the manifests (None before the first shard)."""
    for _, manifest in manifests:
        if manifest["arrays"] is not None:
            return manifest["arrays"]
    return None


def _fix_hint(file: str) -> str:
    return (
        f"Delete {file} and rerun generation to regenerate its rows (the writer drops a deleted shard from "
        "its manifest)."
    )


def _read_shard(
    directory: Path, entry: Mapping[str, Any], manifest_path: Path, manifest: Mapping[str, Any], verify: bool
) -> dict[str, np.ndarray]:
    path = directory / entry["file"]
    if not path.is_file():
        raise ValueError(
            f"shard {path} is listed in {manifest_path.name} but missing. Rerun generation to "
            "regenerate its rows "
            "(the writer drops a missing shard from its manifest when it starts)."
        )
    data = path.read_bytes()
    if len(data) != entry["bytes"]:
        raise ValueError(
            f"shard {path} has {len(data)} bytes but {manifest_path.name} says {entry['bytes']}: it is "
            "truncated "
            f"or was changed. {_fix_hint(path.name)}"
        )
    if verify and _sha256(data) != entry["sha256"]:
        raise ValueError(
            f"shard {path} fails its sha256 check against {manifest_path.name}: it was modified or "
            "corrupted. "
            f"{_fix_hint(path.name)}"
        )
    try:
        raw = safetensors.numpy.load(data)
    except Exception as err:  # noqa: BLE001 - any parse failure is a damaged shard
        raise ValueError(
            f"shard {path} cannot be parsed as safetensors ({err}). {_fix_hint(path.name)}"
        ) from err
    rows = entry["rows"]
    out: dict[str, np.ndarray] = {}
    expected = dict(manifest["arrays"] or {})
    for name, spec in expected.items():
        arr = raw.get(name)
        if arr is None or arr.dtype.name != spec["dtype"] or list(arr.shape) != [rows, *spec["shape"]]:
            raise ValueError(
                f"shard {path} does not hold array {name!r} as {spec} with {rows} rows as its manifest says. "
                f"{_fix_hint(path.name)}"
            )
        out[name] = arr
    for name in RESERVED_ARRAYS:
        arr = raw.get(_SHARD_KEY[name])
        if arr is None or arr.shape[0] != rows:
            raise ValueError(f"shard {path} lacks its {name} rows. {_fix_hint(path.name)}")
        out[name] = arr
    n_ids = len(manifest["contributor_ids"])
    ci = out["contributor_index"]
    if ci.size and (ci.min() < 0 or ci.max() >= n_ids):
        raise ValueError(
            f"shard {path} has contributor indices outside 0..{n_ids - 1}. {_fix_hint(path.name)}"
        )
    return out


def _dedupe(
    merged: dict[str, np.ndarray],
    shard_of_row: np.ndarray,
    origin: list[str],
    ids: list[str],
    directory: Path,
) -> dict[str, np.ndarray]:
    """Drop rows written twice with identical content; raise if the copies differ."""
    ci, si = merged["contributor_index"], merged["sample_index"]
    if ci.size < 2:
        return merged
    order = np.lexsort((si, ci))
    same = np.flatnonzero((ci[order][1:] == ci[order][:-1]) & (si[order][1:] == si[order][:-1]))
    if not same.size:
        return merged
    first, second = order[same], order[same + 1]
    for name, arr in merged.items():
        a = np.ascontiguousarray(arr[first]).reshape(first.size, -1).view(np.uint8)
        b = np.ascontiguousarray(arr[second]).reshape(second.size, -1).view(np.uint8)
        differ = np.flatnonzero((a != b).any(axis=1))
        if differ.size:
            i, j = first[differ[0]], second[differ[0]]
            raise ValueError(
                f"row (contributor {ids[ci[i]]!r}, sample_index {int(si[i])}) is written twice in "
                f"{directory} with "
                f"different {name!r}: in shards {origin[shard_of_row[i]]} and "
                f"{origin[shard_of_row[j]]}. Delete one "
                "of the two shards (and rerun generation to regenerate what it held)."
            )
    keep = np.ones(ci.size, dtype=bool)
    keep[second] = False
    return {k: v[keep] for k, v in merged.items()}


def _check_config(stored: Any, expected: Any, path: Path) -> None:
    if stored == expected:
        return
    diffs = _config_diff(stored, expected, "")
    shown = "; ".join(diffs[:5]) + (f"; ... ({len(diffs)} differences)" if len(diffs) > 5 else "")
    raise ValueError(
        f"the bank in {path.parent} ({path.name}) was produced with a different config: {shown}. Regenerate "
        "the bank for this config (in a new folder), or load it without expected_config."
    )


def _config_diff(stored: Any, expected: Any, prefix: str) -> list[str]:
    if isinstance(stored, dict) and isinstance(expected, dict):
        out: list[str] = []
        for key in list(stored) + [k for k in expected if k not in stored]:
            where = f"{prefix}.{key}" if prefix else str(key)
            if key not in expected:
                out.append(f"{where} is {stored[key]!r} in the bank but absent in the expected config")
            elif key not in stored:
                out.append(f"{where} is absent in the bank but {expected[key]!r} in the expected config")
            else:
                out.extend(_config_diff(stored[key], expected[key], where))
        return out
    if stored != expected:
        return [f"{prefix or 'config'}: bank has {stored!r}, expected {expected!r}"]
    return []
