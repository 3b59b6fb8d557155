"""Processes the tests start (services, gateways, subscribers), each in a process group of its own, killed whole.

A service left running after its test run keeps reconnecting to the run's deleted vhost; enough of them have made the
shared broker unusable. So every process starts in a new session (its own group: whatever it spawns goes with it),
stopping signals the whole group and ends with SIGKILL, and the groups still running are stopped when the test
process exits — normally (atexit) or on SIGTERM, whose default action would end it without any teardown.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

# Started and not yet stopped, by pid (which is also the group's id).
_running: dict[int, subprocess.Popen] = {}
# A forked child inherits the table and the handlers: only the process that started the groups stops them at exit.
_owner_pid = os.getpid()
_atexit_registered = False
_sigterm_installed = False


def start_process(
    args: Sequence[str], *, env: dict[str, str] | None = None, log_path: Path
) -> subprocess.Popen:
    """Start ``args`` as the leader of a new process group, output appended to ``log_path``; stopped at exit."""
    _install_exit_handlers()
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    _running[process.pid] = process
    return process


def stop_processes(
    processes: Iterable[subprocess.Popen], sig: int = signal.SIGTERM, timeout: float = 20.0
) -> None:
    """Send ``sig`` to each process's group, give the leaders ``timeout`` seconds in all to exit, then SIGKILL the
    groups: what did not stop, and anything a leader left behind."""
    processes = list(processes)
    for process in processes:
        _signal_group(process, sig)
    deadline = time.monotonic() + timeout
    for process in processes:
        _wait_for_exit(process, deadline)
    for process in processes:
        # The leader is reaped only after this: until then its pid, the group's id, cannot go to another process
        # (pids wrap around, by default at 32768), so the SIGKILL reaches our group or nothing.
        _signal_group(process, signal.SIGKILL)
        _wait_for_exit(process, time.monotonic() + 10)
        try:
            # Always with a timeout: without one, Popen.wait takes a lock that a SIGTERM handler re-entering it
            # from the same thread would wait for forever.
            process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            pass
        _running.pop(process.pid, None)


def stop_all(timeout: float = 10.0) -> None:
    """Stop every group this process started and has not stopped yet."""
    if os.getpid() == _owner_pid:
        stop_processes(list(_running.values()), timeout=timeout)


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    if process.returncode is not None and _pid_in_use(process.pid):
        # The leader was reaped earlier (poll) and its pid given to a new process: a pid is not reused while a
        # group holds it, so our group is gone and this id is someone else's.
        return
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass  # the whole group is gone


def _pid_in_use(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process
    return True


def _wait_for_exit(process: subprocess.Popen, deadline: float) -> None:
    """Wait until the leader has exited, without reaping it (``WNOWAIT``)."""
    while process.returncode is None:
        try:
            if os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None:
                return
        except ChildProcessError:
            return  # reaped by someone else
        if time.monotonic() >= deadline:
            return
        time.sleep(0.02)


def _install_exit_handlers() -> None:
    global _atexit_registered, _sigterm_installed
    if not _atexit_registered:
        atexit.register(stop_all)
        _atexit_registered = True
    # Signal handlers can only be set from the main thread; a later start from it installs the handler.
    if _sigterm_installed or threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)
    _sigterm_installed = True
    # A process that ignores SIGTERM does not end on it, and one whose handler is not Python's cannot be chained to.
    if previous is signal.SIG_IGN or previous is None:
        return

    def on_sigterm(signum, frame):
        stop_all(timeout=5.0)
        if callable(previous):
            previous(signum, frame)
        else:  # SIG_DFL: end the way SIGTERM would have ended us
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    signal.signal(signal.SIGTERM, on_sigterm)
