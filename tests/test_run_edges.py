"""The edges of a long run: file modes, one writer per folder, --out checks, signals, an unreachable W&B."""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest
from cli_bad_inputs import VALUES

from surrogateshap import FunctionGame, estimate
from surrogateshap.cli import main
from surrogateshap.estimators import SurrogateSHAP
from surrogateshap.io import LOCK_FILE, atomic_write_text, check_output_folder, output_lock
from surrogateshap.report import start_wandb_run, wandb_mode

CLI = [sys.executable, "-m", "surrogateshap.cli"]


@pytest.fixture
def umask():
    """Set the process umask for one test, restoring it after."""
    before = os.umask(0o022)
    os.umask(before)
    yield lambda mask: os.umask(mask)
    os.umask(before)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_writes_get_the_mode_of_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    path = atomic_write_text(tmp_path / "a.txt", "x")
    assert stat.S_IMODE(path.stat().st_mode) == mode
    atomic_write_text(path, "y")  # replacing keeps the umask's mode too
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_every_output_of_a_run_is_readable_by_the_group_under_umask_022(tmp_path, umask):
    umask(0o022)
    (tmp_path / "v.csv").write_text(VALUES)
    assert main(["estimate", "--values", str(tmp_path / "v.csv"), "--out", str(tmp_path / "out")]) == 0
    files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"attribution.json", "attribution.csv", "report.md"}
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o644}
    assert not (tmp_path / "out" / LOCK_FILE).exists()  # the lock goes with the run


def test_a_second_run_on_the_same_out_is_refused_while_the_first_holds_it(tmp_path, capsys):
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from surrogateshap.io import output_lock\n"
         f"with output_lock({str(out)!r}):\n    print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        (tmp_path / "v.csv").write_text(VALUES)
        args = ["estimate", "--values", str(tmp_path / "v.csv"), "--out", str(out)]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert f"is being written by another surrogateshap run (pid {holder.pid})" in err
        assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]  # nothing of the second run
    finally:
        holder.kill()
        holder.wait()
    assert main(args) == 0  # a killed holder leaves no stale lock
    assert (out / "attribution.json").is_file()


def test_nested_locks_of_one_process_share_the_folder(tmp_path):
    with output_lock(tmp_path), output_lock(tmp_path):
        assert (tmp_path / LOCK_FILE).is_file()
    assert not (tmp_path / LOCK_FILE).exists()


def test_out_on_a_read_only_file_system_is_refused_before_any_work(tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    with pytest.raises(ValueError, match=r"--out \S+/new \(its folder \S+\) is on a read-only file system"):
        check_output_folder(tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_sigterm_during_generation_stops_at_once_with_one_line_and_the_bank_resumes(tmp_path):
    out = tmp_path / "demo"
    env = {**os.environ, "WANDB_MODE": "disabled"}
    run = subprocess.Popen([*CLI, "demo", "--out", str(out), "--no-wandb", "--no-progress"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    manifest = out / "bank" / "manifest.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and run.poll() is None:  # wait until generation has written rows
        if manifest.is_file() and json.loads(manifest.read_text()).get("shards"):
            break
        time.sleep(0.2)
    assert run.poll() is None, "the demo ended before it could be interrupted"
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 128 + signal.SIGTERM, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert lines == [f"error: stopped by SIGTERM; bank rows already written under {out}/bank are kept: rerun the "
                     "same command to resume."], err
    assert "Traceback" not in err
    assert json.loads(manifest.read_text())["shards"]  # the rows written stay
    assert not (out / "attribution.json").exists()


def test_ctrl_c_during_estimation_is_one_line_exit_130_and_no_output(tmp_path, capsys, monkeypatch):
    def interrupted_fit(self, masks, values):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(30)  # the handler raises long before this ends
        raise AssertionError("SIGINT did not stop the fit")

    monkeypatch.setattr(SurrogateSHAP, "estimate_from_values", interrupted_fit)
    (tmp_path / "v.csv").write_text(VALUES)
    before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN in a background job of a shell
    status = main(["estimate", "--values", str(tmp_path / "v.csv"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert status == 130
    assert err == "error: stopped by SIGINT; files already written are complete: rerun the same command."
    assert not (tmp_path / "out").exists()  # the folder the run created is removed, as nothing was written
    assert signal.getsignal(signal.SIGINT) is before  # the handler found is restored


@pytest.fixture
def wandb_online(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    return lambda url: monkeypatch.setenv("WANDB_BASE_URL", url)


def test_an_unreachable_wandb_server_means_offline_at_once_with_a_message(tmp_path, wandb_online):
    wandb_online("http://127.0.0.1:9")  # nothing listens there
    mode, message = wandb_mode(timeout=1.0)
    assert mode == "offline"
    assert message.startswith("W&B is set to online but http://127.0.0.1:9 cannot be reached (")
    assert "waited up to 1 s" in message and "wandb sync" in message
    run, said = start_wandb_run(tmp_path, mode=mode)
    try:
        assert run is not None and said.startswith("W&B run offline in ")
    finally:
        run.finish()


def test_a_wandb_server_that_answers_but_fails_gives_an_offline_run_after_the_init_timeout(
    tmp_path, wandb_online, monkeypatch
):
    import http.server
    import threading

    import surrogateshap.report.wandb_log as wandb_log

    class Failing(http.server.BaseHTTPRequestHandler):
        def answer(self):
            self.send_response(500)
            self.end_headers()

        do_GET = do_POST = do_HEAD = answer

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        wandb_online(f"http://127.0.0.1:{server.server_port}")
        monkeypatch.setattr(wandb_log, "INIT_TIMEOUT_S", 3.0)
        assert wandb_mode(timeout=1.0) == ("online", "")  # it answers
        run, message = start_wandb_run(tmp_path)
        try:
            assert run is not None
            assert message.startswith("W&B online run could not start within 3 s (")
            assert message.endswith("logging offline; upload later with `wandb sync`.") and "\n" not in message
        finally:
            run.finish()
    finally:
        server.shutdown()


def test_a_budget_above_the_games_coalitions_is_capped_with_a_warning():
    game = FunctionGame(lambda m: m.sum(1).astype(float) ** 2, 4)
    with pytest.warns(UserWarning, match="budget 1000000000 is more than the 16 distinct coalitions of 4 players"):
        att = estimate(game, "kernelshap", budget=10**9)
    np.testing.assert_allclose(att.values, estimate(game, "exact").values, atol=1e-9)


def test_a_budget_whose_design_cannot_fit_in_memory_is_refused_before_any_evaluation():
    calls = []
    game = FunctionGame(lambda m: calls.append(len(m)) or m.sum(1).astype(float), 40)
    with pytest.raises(ValueError, match=r"budget 1000000000 on 40 players needs about \d+ GiB .* at most \d+\."):
        estimate(game, "kernelshap", budget=10**9)
    assert calls == []
