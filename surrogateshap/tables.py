"""Reading the text files users give (CSV, JSONL, YAML): every defect is one line naming the file, the line or
column, what is wrong and the fix, raised before any work starts.

The standard library's ``csv`` module does the parsing; what it leaves to its callers is checked here: a
missing file, a folder, an empty file, text that is not UTF-8 (a UTF-8 byte-order mark, Excel's "CSV UTF-8",
is accepted and dropped), a blank or repeated column name, a row with more or fewer fields than the header.
Numbers are parsed by :func:`parse_finite` (NaN and infinities refused).

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
>>> _ = path.write_bytes(b"\\xef\\xbb\\xbfa,b\\n1,2\\n\\n3,4\\n")
>>> table = read_csv_table(path, "values file")
>>> table.header, table.rows
(['a', 'b'], [(2, ['1', '2']), (4, ['3', '4'])])
>>> _ = path.write_text("a,a\\n1,2\\n")
>>> read_csv_table(path, "values file")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: values file ...t.csv: column name 'a' appears twice in the header (columns 1 and 2); give every ...
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CsvTable", "parse_finite", "read_csv_table", "read_text"]


def read_text(path: str | Path, what: str, fix: str = "") -> str:
    """The UTF-8 text of ``path`` (a leading byte-order mark dropped), or one line saying why not.

    ``what`` names the file's role in messages ("coalition values file"); ``fix`` (a sentence) is
    appended when the file is missing.

    >>> read_text("/no/such.csv", "metadata file", "Give one row per training example.")
    Traceback (most recent call last):
    ...
    FileNotFoundError: metadata file /no/such.csv does not exist. Give one row per training example.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist." + (f" {fix}" if fix else ""))
    if path.is_dir():
        raise ValueError(f"{what} {path} is a folder, not a file; give the file's path.")
    if not path.is_file():
        raise ValueError(f"{what} {path} is not a regular file (a pipe or a device); save it to a file and give that.")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        excel = " (in Excel: 'CSV UTF-8')" if path.suffix.lower() in (".csv", ".tsv") else ""
        raise ValueError(
            f"{what} {path} line {line}: byte 0x{data[err.start]:02x} is not UTF-8 text; save the file as "
            f"UTF-8{excel}."
        ) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise ValueError(f"{what} {path} line {line}: holds a NUL byte, so it is not a text file; give a text file.")
    if not text.strip():
        raise ValueError(f"{what} {path} is empty." + (f" {fix}" if fix else ""))
    return text


@dataclass(frozen=True)
class CsvTable:
    """A checked CSV: the header's column names and the non-blank rows as ``(line number, fields)``.

    Every row has exactly as many fields as the header; fields are stripped of surrounding spaces.
    """

    path: Path
    what: str
    header: list[str]
    rows: list[tuple[int, list[str]]]

    def where(self, line: int, column: str | None = None) -> str:
        """``"<what> <path> line L[, column 'c']"``, the start of a message about one field."""
        return f"{self.what} {self.path} line {line}" + (f", column {column!r}" if column is not None else "")

    def column(self, name: str) -> list[str]:
        """The fields of column ``name``, in row order."""
        j = self.header.index(name)
        return [fields[j] for _, fields in self.rows]


def read_csv_table(path: str | Path, what: str, fix: str = "") -> CsvTable:
    """Read a CSV with a header row and check its shape (see the module's docstring for what is checked)."""
    path = Path(path)
    text = read_text(path, what, fix)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    start = 1  # the line the record being read begins on
    try:
        for fields in reader:
            start, first = reader.line_num + 1, start
            if not any(f.strip() for f in fields):
                continue
            fields = [f.strip() for f in fields]
            if header is None:
                header = fields
                _check_header(header, path, what)
                continue
            if len(fields) != len(header):
                raise ValueError(
                    f"{what} {path} line {first} has {len(fields)} field(s) but the header has "
                    f"{len(header)}; give every row one field per column (quote fields that hold commas)."
                )
            rows.append((first, fields))
    except csv.Error as err:
        if "end of data" in str(err):
            raise ValueError(f"{what} {path} line {start}: a quote (\") opened on this line is never closed; close it "
                             "or remove it.") from None
        raise ValueError(f"{what} {path} line {reader.line_num} is not valid CSV ({err}); fix the quoting.") from None
    if header is None:  # only rows of empty fields, e.g. ",,"
        raise ValueError(f"{what} {path} has no header row, only empty fields." + (f" {fix}" if fix else ""))
    return CsvTable(path, what, header, rows)


def _check_header(header: list[str], path: Path, what: str) -> None:
    if len(header) == 1:
        for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "'|'")):
            if sep in header[0]:
                raise ValueError(
                    f"{what} {path}: the header is one column {header[0]!r:.60}: the file looks separated by {name}, "
                    "not commas; save it as comma-separated CSV."
                )
    seen: dict[str, int] = {}
    for j, name in enumerate(header, start=1):
        if not name:
            raise ValueError(f"{what} {path}: column {j} of the header has no name; name every column.")
        if name in seen:
            raise ValueError(
                f"{what} {path}: column name {name!r} appears twice in the header (columns {seen[name]} and {j}); "
                "give every column its own name."
            )
        seen[name] = j


def parse_finite(text: str, where: str, fix: str) -> float:
    """``text`` as a finite float, or a ValueError ``"<where>: <text> is not a finite number; <fix>"``.

    >>> parse_finite(" 2.5", "line 3", "give a number.")
    2.5
    >>> parse_finite("nan", "values.csv line 3, column 'value'", "give a number.")
    Traceback (most recent call last):
    ...
    ValueError: values.csv line 3, column 'value': 'nan' is not a finite number; give a number.
    """
    try:
        value = math.nan if "_" in text else float(text)  # float() reads "5_5" as 55
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(f"{where}: {text!r} is not a finite number; {fix}")
    return value
