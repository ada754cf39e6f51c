"""Every bad input of ``tests/cli_bad_inputs.py``: exit status 2, one line naming the problem, ``--out`` untouched."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cli_bad_inputs import cases

from surrogateshap.cli import main


def snapshot(path: Path) -> object:
    """What is at ``path``: None, a file's bytes, or a folder's files (relative path -> bytes)."""
    if not path.exists():
        return None
    if path.is_file():
        return path.read_bytes()
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


CASES = cases()


def test_the_table_is_large_and_its_names_unique():
    assert len(CASES) >= 40
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_is_one_line_exit_2_and_leaves_out_as_it_was(case, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.chdir(tmp_path)  # a case that wrongly writes to the working folder must not write into the repository
    args = case.prepare(tmp_path)
    before = snapshot(tmp_path / case.out)
    status = main(args)
    err = capsys.readouterr().err.strip()
    assert status == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert re.search(case.message, lines[0]), lines[0]
    assert snapshot(tmp_path / case.out) == before
