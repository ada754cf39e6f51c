"""What the command line says to each bad input of ``tests/cli_bad_inputs.py``: the record behind the
hardening issue, one row per case with the exit status and the message (the case's folder shown as TMP).

    python benchmarks/bad_inputs.py        # -> benchmarks/results/bad_inputs.md

The test suite checks the same table (``tests/test_cli_bad_inputs.py``); this script only writes it down.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    from cli_bad_inputs import cases

    from surrogateshap.cli import main as cli

    os.environ["WANDB_MODE"] = "disabled"
    rows = []
    for case in cases():
        with tempfile.TemporaryDirectory() as folder:
            args = case.prepare(Path(folder))
            err = io.StringIO()
            with contextlib.chdir(folder), contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                status = cli(args)
            message = err.getvalue().strip().replace(folder, "TMP").replace("|", "\\|")
            shown = " ".join(a.replace(folder, "TMP") for a in args)
        rows.append(f"| {case.name} | `surrogateshap {shown}` | {status} | {message} |")
        print(f"{status}  {case.name}: {message[:110]}")
    text = "\n".join([
        "# Bad inputs and what the command line says",
        "",
        f"{len(rows)} cases from `tests/cli_bad_inputs.py` (written by `benchmarks/bad_inputs.py`; the suite checks "
        "each: exit status 2, one line, `--out` left as it was). TMP is the case's folder.",
        "",
        "| case | command | exit | message |",
        "|---|---|---|---|",
        *rows,
        "",
    ])
    (RESULTS / "bad_inputs.md").write_text(text, encoding="utf-8")
    print(f"wrote {RESULTS / 'bad_inputs.md'}")


if __name__ == "__main__":
    main()
