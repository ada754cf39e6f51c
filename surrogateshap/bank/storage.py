"""The on-disk format of a contributor bank: manifests, checksummed shards, resuming, merging.

A bank folder::

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
overwritten. Reading merges all manifests' shards in plan order. A row written twice (e.g. a
rank re-ran a batch after a crash) is kept once if both copies are identical byte for byte;
copies that differ raise a ValueError naming both shards. A manifest with a ``membership`` key
comes from the pre-release bank-level soft membership and is refused with the way to regenerate.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy

from .._version import __version__
from ..checks import check_int
from ..io import atomic_write_bytes, atomic_write_json
from .rows import RESERVED_ARRAYS, BankRows, bank_rows, in_plan_order, json_config, normalise_n_examples

__all__ = [
    "FORMAT", "FORMAT_VERSION", "MANIFEST_NAME", "ShardWriter", "check_bank_folder", "existing_rows", "holds_bank",
    "read_bank", "remove_bank",
]

FORMAT = "surrogateshap.contributor_bank"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
_SHARD_KEY = {name: f"__{name}__" for name in RESERVED_ARRAYS}
_RANK_MANIFEST = re.compile(r"^manifest\.rank(\d+)\.json$")
_SHARD_INDEX = re.compile(r"-(\d+)\.safetensors$")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------- writing
class ShardWriter:
    """Append shards to a bank folder, batch by batch, so a generation run can resume.

    Each writer owns one manifest: ``manifest.json`` (``rank=None``) or ``manifest.rank{r}.json``
    (DDP rank ``r``), so ranks never write the same file. Opening a folder that already has this
    manifest resumes it: ids, ``n_examples`` and ``config`` must match, and shards it lists that
    were deleted (e.g. after a checksum error) are dropped from it with a warning, so their rows
    count as missing and get regenerated. Use :func:`existing_rows` to skip rows already written.

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> writer = ShardWriter(folder, {"a": 2, "b": 1})
    >>> path = writer.append({"score": np.array([0.1, 0.2])}, ["a", "b"], sample_index=[0, 0])
    >>> path.name, sorted(writer.existing_rows())
    ('shard-00000.safetensors', [('a', 0), ('b', 0)])
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
        self.n_examples = normalise_n_examples(n_examples)
        self.contributor_ids = list(self.n_examples)
        self.config = {} if config is None else json_config(dict(config), "config")
        self.rank = None if rank is None else check_int(rank, "rank", 0)
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
                "library_version": __version__,
                "rank": self.rank,
                "contributor_ids": self.contributor_ids,
                "n_examples": self.n_examples,
                "config": self.config,
                "arrays": None,
                "shards": [],
            }
            atomic_write_json(self.manifest_path, manifest)
        self._manifest = manifest

    def set_schema(self, rows: BankRows) -> None:
        """Record the arrays (names, dtypes, shapes) of ``rows`` as the bank's, or refuse other ones."""
        schema = rows.schema()
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
        return self.write(bank_rows(features, contributors, self.n_examples, sample_index, seed))

    def append_bank(self, bank: Any) -> Path | None:
        """Write the rows of a :class:`~surrogateshap.bank.ContributorBank` of the same contributors as one shard."""
        return self.write(bank.rows)

    def write(self, rows: BankRows) -> Path | None:
        """Write ``rows`` (same contributors) as one shard; None when there are none."""
        if rows.contributor_ids != self.contributor_ids or rows.n_examples != self.n_examples:
            raise ValueError(
                "the rows to append were made for other contributors or n_examples than this bank."
            )
        self.set_schema(rows)
        if len(rows) == 0:
            return None
        tensors = dict(rows.arrays)
        for name in RESERVED_ARRAYS:
            tensors[_SHARD_KEY[name]] = getattr(rows, name)
        data = safetensors.numpy.save(
            {k: np.ascontiguousarray(v) for k, v in tensors.items()},
            metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION), "rank": str(self.rank)},
        )
        path = self.directory / self._next_shard_name()
        atomic_write_bytes(path, data)
        entry = {"file": path.name, "rows": len(rows), "bytes": len(data), "sha256": _sha256(data)}
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


def holds_bank(directory: str | Path) -> bool:
    """Whether ``directory`` has a bank manifest (single-process or per rank).

    >>> holds_bank("/nonexistent")
    False
    """
    return bool(_manifest_paths(Path(directory)))


def remove_bank(directory: str | Path) -> None:
    """Delete the manifests and shards of the bank in ``directory`` (other files stay)."""
    directory = Path(directory)
    for path in _manifest_paths(directory):
        path.unlink()
    for path in directory.glob("shard-*.safetensors"):
        path.unlink()


def read_bank(
    directory: str | Path, *, expected_config: Mapping[str, Any] | None = None, verify: bool = True
) -> tuple[BankRows, dict[str, Any]]:
    """The rows of the bank in ``directory`` (every manifest's shards merged in plan order) and its config.

    Checks each shard's size and (``verify=True``) sha256 against its manifest. Raises a
    ValueError naming the file for a missing, truncated, tampered or unreadable shard, a
    manifest of another format version, manifests that disagree, and (``expected_config``)
    a bank produced with a different config.
    """
    directory = Path(directory)
    manifests = _read_manifests(directory)
    first_path, first = manifests[0]
    if expected_config is not None:
        _check_config(first["config"], json_config(dict(expected_config), "expected_config"), first_path)
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
    rows = in_plan_order(
        {k: merged[k] for k in schema}, merged["contributor_index"], first["contributor_ids"], first["n_examples"],
        merged["sample_index"], merged["seed"], check_duplicates=False,
    )
    return rows, first["config"]


# ----------------------------------------------------------------------------- checking and reading
def check_bank_folder(
    directory: str | Path, n_examples: Mapping[Any, Any], config: Mapping[str, Any] | None = None
) -> None:
    """Raise a ValueError if ``directory`` holds a bank of other contributors, ``n_examples`` or config.

    Reads every manifest of the folder and writes nothing; a folder without a bank passes.
    """
    n_examples = normalise_n_examples(n_examples)
    config = {} if config is None else json_config(dict(config), "config")
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
            f"{data.get('library_version')!r}); this surrogateshap {__version__} reads format version "
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
    if "membership" in data:
        raise ValueError(
            f"bank manifest {path} has a `membership` key: it was written in the pre-release format with "
            "bank-level soft membership, which is no longer read. Regenerate the bank (per unit of shared "
            "conditions, with `membership: {kind: soft}` in the config, if contributors share conditions; see "
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
