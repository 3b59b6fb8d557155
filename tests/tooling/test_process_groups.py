"""Processes started for tests leave nothing behind: stopping one kills its whole process group, and the groups
still running go when the test process ends, whichever way it ends (normal exit, exception, SIGTERM).

Each group here is a cheap stand-in for a service: a Python leader and a child of its own that ignores SIGTERM
(as a stuck worker would), so only the final SIGKILL of the group gets rid of it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from comptoir_testing import processes
from comptoir_testing.processes import start_process, stop_processes
from comptoir_testing.system import ProcessFailed, SystemUnderTest

GROUP = """
import signal, subprocess, sys, time
if sys.argv[1] == "leader-ignores-sigterm":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
subprocess.Popen([sys.executable, "-c", '''
import pathlib, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
pathlib.Path(sys.argv[1]).write_text("ready")
time.sleep(600)
''', sys.argv[2]])
time.sleep(600)
"""

# A test run in miniature: starts one group, then, once told to go on, ends as its first argument says.
RUN = """
import signal, sys, time
from pathlib import Path
from comptoir_testing.processes import start_process

mode, folder = sys.argv[1], Path(sys.argv[2])
if mode == "own-sigterm-handler":
    def on_sigterm(signum, frame):
        (folder / "own-handler-ran").write_text("yes")
        sys.exit(7)
    signal.signal(signal.SIGTERM, on_sigterm)
process = start_process(
    [sys.executable, "-c", sys.argv[3], "leader-obeys", str(folder / "ready")], log_path=folder / "group.log"
)
(folder / "pgid").write_text(str(process.pid))
while not (folder / "go").exists():
    time.sleep(0.02)
if mode == "exception":
    raise RuntimeError("the run crashed")
if mode == "normal-exit":
    sys.exit(0)
time.sleep(600)
"""


def live_members(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that are not zombies (a zombie has ended; its parent has not reaped it yet)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # ended while we looked
        state, group = fields[0], int(fields[2])
        if group == pgid and state not in ("Z", "X"):
            members.append(int(stat.parent.name))
    return members


def group_ended(pgid: int, timeout: float = 5.0) -> bool:
    """Whether group ``pgid`` has no live member within ``timeout`` (a SIGKILL takes effect when the kernel next
    schedules the process, a moment after it was sent)."""
    deadline = time.monotonic() + timeout
    while live_members(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def wait_for(path: Path, process: subprocess.Popen | None = None, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process is None or process.poll() is None, f"exited with {process.returncode}"
        assert time.monotonic() < deadline, f"{path.name} did not appear"
        time.sleep(0.02)


def start_group(tmp_path: Path, mode: str) -> subprocess.Popen:
    process = start_process(
        [sys.executable, "-c", GROUP, mode, str(tmp_path / "ready")], log_path=tmp_path / "group.log"
    )
    wait_for(tmp_path / "ready", process)
    assert len(live_members(process.pid)) == 2
    return process


@pytest.mark.parametrize("mode", ["leader-obeys", "leader-ignores-sigterm"])
def test_stopping_a_process_kills_its_whole_group(tmp_path, mode):
    process = start_group(tmp_path, mode)
    stop_processes([process], timeout=1.0)
    assert group_ended(process.pid)
    assert process.returncode == (-signal.SIGTERM if mode == "leader-obeys" else -signal.SIGKILL)
    assert process.pid not in processes._running


def test_a_group_whose_leader_already_exited_is_still_cleaned_up(tmp_path):
    process = start_group(tmp_path, "leader-obeys")
    os.kill(process.pid, signal.SIGKILL)  # the leader crashed; its child lives on in the group
    process.wait(timeout=10)
    assert len(live_members(process.pid)) == 1
    stop_processes([process], timeout=1.0)
    assert group_ended(process.pid)


@pytest.mark.parametrize(
    ("mode", "signal_it", "exit_code"),
    [
        ("normal-exit", False, 0),
        ("exception", False, 1),
        ("default-sigterm", True, -signal.SIGTERM),
        ("own-sigterm-handler", True, 7),
    ],
)
def test_groups_go_when_the_test_process_ends(tmp_path, mode, signal_it, exit_code):
    tools = str(Path(processes.__file__).resolve().parents[1])
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [tools, os.environ.get("PYTHONPATH")]))}
    run = subprocess.Popen(
        [sys.executable, "-c", RUN, mode, str(tmp_path), GROUP], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(tmp_path / "ready", run)
        pgid = int((tmp_path / "pgid").read_text())
        assert len(live_members(pgid)) == 2
        if signal_it:
            run.send_signal(signal.SIGTERM)
        else:
            (tmp_path / "go").touch()
        _, errors = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == exit_code, errors
    assert group_ended(pgid)
    assert (tmp_path / "own-handler-ran").exists() == (mode == "own-sigterm-handler")


def test_a_system_that_fails_to_start_stops_what_it_started(tmp_path):
    """The first service exits at once: start() reports it and stops the processes already running."""
    sut = SystemUnderTest(tmp_path, "amqp://unused/", {}, "smtp://unused")
    started: list[subprocess.Popen] = []

    def fake_service(name, instance=None, env=None):
        script = "raise SystemExit(3)" if not sut.processes else GROUP
        key = sut.launch(
            name, [sys.executable, "-c", script, "leader-obeys", str(tmp_path / name)], dict(os.environ), 0
        )
        started.append(sut.processes[key])
        return key

    sut.start_service = fake_service
    sut.start_gateway = lambda: fake_service("gateway")
    with pytest.raises(ProcessFailed, match="tickets exited with 3"):
        sut.start(services=("tickets", "notifier"))
    assert sut.processes == {}
    assert len(started) == 3 and all(group_ended(process.pid) for process in started)
