"""A second SIGTERM while a service stops gracefully is ignored: the stop completes and the process exits.

(nameko's own runner started a second stop, whose one-shot events raised "Trying to re-send() an already-triggered
event", and the process never exited.)"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

SERVICE = textwrap.dedent(
    """
    import eventlet
    eventlet.monkey_patch()
    import sys
    from pathlib import Path
    from nameko.timer import timer
    from comptoir_common.runner import run_until_stopped

    MARK = Path(sys.argv[2])

    class Slow:
        name = "slow_stop_{suffix}"

        @timer(interval=0.1, eager=True)
        def tick(self):
            MARK.touch()  # the service runs: a tick has started
            eventlet.sleep(1.5)  # a long worker the graceful stop has to wait for

    run_until_stopped([Slow], {{"AMQP_URI": sys.argv[1]}})
    """
)


def test_second_sigterm_during_a_graceful_stop_is_ignored(tmp_path, amqp_uri):
    script = tmp_path / "slow.py"
    script.write_text(SERVICE.format(suffix=tmp_path.name.replace("-", "_")))
    mark = tmp_path / "ticked"
    process = subprocess.Popen(
        [sys.executable, str(script), amqp_uri, str(mark)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not mark.exists():
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "the service never ran"
            time.sleep(0.05)
        mark.unlink()
        while not mark.exists():  # a fresh tick: the stop below has a worker to wait for
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)  # hung forever before the fix
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    assert "already-triggered" not in output and "Traceback" not in output, output
