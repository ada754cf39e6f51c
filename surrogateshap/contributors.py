"""Contributor registry: which training example belongs to which contributor, and its condition.

A metadata file (CSV with a header row, or JSONL with one JSON object per line) lists one row
per training example: an example id, a contributor id and either a class label (int) or a
caption (str). Column names are configurable; the defaults are ``example_id``, ``contributor``,
``label`` and ``caption``. Every bad row is collected and reported together in one ValueError, one
line listing the first rows with their line numbers (CSV: line 1 is the header, so the first example
is on line 2).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .checks import check_int, did_you_mean
from .tables import read_csv_table, read_text

__all__ = ["ContributorRegistry", "Example"]

ConditionKind = Literal["label", "caption"]
_MAX_REPORTED = 10  # bad rows listed in the one-line message


@dataclass(frozen=True)
class Example:
    """One training example: its id, its contributor and its condition (label or caption)."""

    example_id: str
    contributor: str
    condition: int | str


@dataclass(frozen=True)
class _Unparsable:
    """A line that could not be parsed (reported with the other bad rows)."""

    message: str


def _parse_label(value: Any) -> int | None:
    """An integer class label from an int, an integral float or a decimal string; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("+-").isascii() and text.lstrip("+-").isdigit():  # not "²", which int() refuses
            return int(text)
    return None


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class ContributorRegistry:
    """Training examples grouped by contributor, with each contributor's labels or captions.

    Build it with :meth:`from_file` (CSV / JSONL) or :meth:`from_rows` (in-memory mappings).
    Contributor order (the players' order) is the order of first appearance.

    Attributes
    ----------
    condition_kind : ``"label"`` (class-conditional models) or ``"caption"`` (text-to-image).
    num_labels : the number of classes when given (labels then lie in ``[0, num_labels)``).
    """

    def __init__(
        self,
        examples: Sequence[Example],
        condition_kind: ConditionKind,
        *,
        num_labels: int | None = None,
        source: str = "rows",
    ) -> None:
        if condition_kind not in ("label", "caption"):
            raise ValueError(f"condition_kind must be 'label' or 'caption', got {condition_kind!r}.")
        if not examples:
            raise ValueError(f"{source} lists no training examples: a registry needs at least one.")
        self.condition_kind: ConditionKind = condition_kind
        self.num_labels = num_labels
        self.source = source
        self._examples = list(examples)
        self._by_contributor: dict[str, list[Example]] = {}
        for ex in self._examples:
            self._by_contributor.setdefault(ex.contributor, []).append(ex)

    # construction ------------------------------------------------------------------
    @classmethod
    def from_rows(
        cls,
        rows: Iterable[Mapping[str, Any]],
        *,
        condition: ConditionKind | None = None,
        num_labels: int | None = None,
        example_column: str = "example_id",
        contributor_column: str = "contributor",
        label_column: str = "label",
        caption_column: str = "caption",
        first_line: int = 1,
        source: str = "rows",
    ) -> ContributorRegistry:
        """A registry from mappings (one per training example); row ``i`` is line ``first_line + i``.

        ``condition`` picks labels or captions; by default labels when any row has
        ``label_column``, else captions. A row without an example id gets its line number as id.
        """
        numbered = [(first_line + i, row) for i, row in enumerate(rows)]
        return cls._build(
            numbered,
            condition=condition,
            num_labels=num_labels,
            columns=(example_column, contributor_column, label_column, caption_column),
            source=source,
        )

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        *,
        condition: ConditionKind | None = None,
        num_labels: int | None = None,
        example_column: str = "example_id",
        contributor_column: str = "contributor",
        label_column: str = "label",
        caption_column: str = "caption",
        format: Literal["csv", "jsonl"] | None = None,  # noqa: A002 - the natural name
    ) -> ContributorRegistry:
        """Read a CSV (header row) or JSONL metadata file; the format follows the suffix by default."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"contributor metadata file {path} does not exist: give a CSV or JSONL file with one row per "
                f"training example (columns {example_column!r}, {contributor_column!r} and {label_column!r} or "
                f"{caption_column!r})."
            )
        fmt = format or ("jsonl" if path.suffix.lower() in (".jsonl", ".ndjson", ".json") else "csv")
        if fmt == "csv":
            numbered = _read_csv(path, contributor_column)
        elif fmt == "jsonl":
            numbered = _read_jsonl(path)
        else:
            raise ValueError(f"format must be 'csv' or 'jsonl', got {format!r}.")
        return cls._build(
            numbered,
            condition=condition,
            num_labels=num_labels,
            columns=(example_column, contributor_column, label_column, caption_column),
            source=str(path),
        )

    @classmethod
    def _build(
        cls,
        numbered: list[tuple[int, Any]],
        *,
        condition: ConditionKind | None,
        num_labels: int | None,
        columns: tuple[str, str, str, str],
        source: str,
    ) -> ContributorRegistry:
        ex_col, con_col, lab_col, cap_col = columns
        if num_labels is not None:
            check_int(num_labels, "num_labels", 1)
        errors: list[str] = []
        if condition is None:
            has_label = any(isinstance(r, Mapping) and not _is_blank(r.get(lab_col)) for _, r in numbered)
            condition = "label" if has_label else "caption"
        elif condition not in ("label", "caption"):
            raise ValueError(f"condition must be 'label', 'caption' or None, got {condition!r}.")
        first_seen: dict[str, int] = {}
        examples: list[Example] = []
        for line, row in numbered:
            if isinstance(row, _Unparsable):
                errors.append(f"line {line}: {row.message}")
                continue
            if not isinstance(row, Mapping):
                errors.append(f"line {line}: not a record with named fields (got {type(row).__name__})")
                continue
            problems = []
            contributor = row.get(con_col)
            if _is_blank(contributor):
                problems.append(f"missing contributor ({con_col!r})")
            elif isinstance(contributor, bool) or not isinstance(contributor, (str, int)):
                problems.append(f"contributor {contributor!r} is not a name (a string or an integer)")
            raw_id = row.get(ex_col)
            if not _is_blank(raw_id) and (isinstance(raw_id, bool) or not isinstance(raw_id, (str, int))):
                problems.append(f"example id {raw_id!r} is not a name (a string or an integer)")
            example_id = str(line) if _is_blank(raw_id) else str(raw_id).strip()
            if example_id in first_seen:
                problems.append(f"duplicate example id {example_id!r} (first on line {first_seen[example_id]})")
            else:
                first_seen[example_id] = line
            cond: int | str | None = None
            if condition == "label":
                value = row.get(lab_col)
                cond = _parse_label(value)
                if _is_blank(value):
                    problems.append(f"missing label ({lab_col!r})")
                elif cond is None:
                    problems.append(f"label {value!r} is not an integer")
                elif cond < 0 or (num_labels is not None and cond >= num_labels):
                    bound = f"[0, {num_labels})" if num_labels is not None else ">= 0"
                    problems.append(f"label {cond} is out of range {bound}")
            else:
                value = row.get(cap_col)
                if _is_blank(value):
                    problems.append(f"empty caption ({cap_col!r})")
                elif not isinstance(value, str):
                    problems.append(f"caption {value!r} is not a string")
                else:
                    cond = value
            if problems:
                errors.append(f"line {line}: " + "; ".join(problems))
            else:
                examples.append(Example(example_id, str(contributor).strip(), cond))  # type: ignore[arg-type]
        if errors:
            shown = "; ".join(errors[:_MAX_REPORTED])
            more = f"; ... and {len(errors) - _MAX_REPORTED} more" if len(errors) > _MAX_REPORTED else ""
            raise ValueError(f"{len(errors)} bad row(s) in {source}: {shown}{more}; fix them and rerun.")
        return cls(examples, condition, num_labels=num_labels, source=source)

    # accessors ----------------------------------------------------------------------
    @property
    def contributor_ids(self) -> list[str]:
        """Contributor ids in order of first appearance (the players' order)."""
        return list(self._by_contributor)

    @property
    def n_examples(self) -> dict[str, int]:
        """Training examples per contributor, in player order."""
        return {cid: len(rows) for cid, rows in self._by_contributor.items()}

    @property
    def examples(self) -> list[Example]:
        """All examples in file order."""
        return list(self._examples)

    def __len__(self) -> int:
        return len(self._by_contributor)

    def __contains__(self, contributor: object) -> bool:
        return str(contributor) in self._by_contributor

    def _rows(self, contributor: Any) -> list[Example]:
        try:
            return self._by_contributor[str(contributor)]
        except KeyError:
            raise KeyError(
                f"contributor {contributor!r} is not in the registry ({self.source}); it has "
                f"{self.contributor_ids[:20]}{'...' if len(self) > 20 else ''}."
            ) from None

    def label_counts(self, contributor: Any) -> dict[int, int]:
        """Class label -> number of the contributor's examples with it, sorted by label."""
        if self.condition_kind != "label":
            raise ValueError(f"the registry from {self.source} holds captions, not class labels.")
        counts = Counter(int(ex.condition) for ex in self._rows(contributor))
        return dict(sorted(counts.items()))

    def captions(self, contributor: Any) -> list[str]:
        """The contributor's captions, one per example, in file order."""
        if self.condition_kind != "caption":
            raise ValueError(f"the registry from {self.source} holds class labels, not captions.")
        return [str(ex.condition) for ex in self._rows(contributor)]

    def example_ids(self, contributor: Any) -> list[str]:
        """The contributor's example ids, in file order."""
        return [ex.example_id for ex in self._rows(contributor)]

    def fingerprint(self) -> str:
        """sha256 of the contributors and their conditions (identifies the registry in bank configs)."""
        digest = hashlib.sha256()
        digest.update(self.condition_kind.encode())
        for cid, rows in self._by_contributor.items():
            digest.update(json.dumps([cid, [ex.condition for ex in rows]]).encode())
        return digest.hexdigest()

    def __repr__(self) -> str:
        return (
            f"ContributorRegistry({len(self)} contributors, {len(self._examples)} examples, "
            f"conditions: {self.condition_kind}, source: {self.source})"
        )


_WHAT = "contributor metadata file"


def _read_csv(path: Path, contributor_column: str) -> list[tuple[int, Any]]:
    table = read_csv_table(path, _WHAT, "Give a CSV with a header row and one row per training example.")
    if contributor_column not in table.header:
        raise ValueError(
            f"{_WHAT} {path} has no {contributor_column!r} column{did_you_mean(contributor_column, table.header)} "
            f"(columns: {table.header[:8]}); name the column of contributor ids {contributor_column!r} or pass "
            "contributor_column."
        )
    return [(line, dict(zip(table.header, fields))) for line, fields in table.rows]


def _read_jsonl(path: Path) -> list[tuple[int, Any]]:
    text = read_text(path, _WHAT, "Give one JSON object per line, one line per training example.")
    if text.lstrip().startswith("["):
        raise ValueError(
            f"{_WHAT} {path} holds a JSON array; metadata is JSON Lines: one object per line, one line per training "
            "example (convert it, e.g. jq -c '.[]' FILE > FILE.jsonl)."
        )
    out: list[tuple[int, Any]] = []
    for line, record in enumerate(text.splitlines(), start=1):
        if not record.strip():
            continue
        try:
            out.append((line, json.loads(record, parse_constant=_no_constant)))
        except (json.JSONDecodeError, ValueError) as err:
            reason = err.msg if isinstance(err, json.JSONDecodeError) else str(err)
            out.append((line, _Unparsable(f"not valid JSON ({reason})")))
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")
