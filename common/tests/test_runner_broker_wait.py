"""A starting service waits for the broker a while (COMPTOIR_BROKER_WAIT), then exits with a clear message."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from comptoir_testing import infra


def test_service_waits_for_the_broker_then_gives_up(tmp_path):
    port = infra.free_port()  # nothing listens there
    env = os.environ | {
        "AMQP_URI": f"amqp://guest:guest@127.0.0.1:{port}/",
        "COMPTOIR_BROKER_WAIT": "3",
        "COMPTOIR_DATA_DIR": str(tmp_path),
        "COMPTOIR_LOG_FORMAT": "text",
    }
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "comptoir_auth"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert time.monotonic() - started >= 3
    assert "retrying" in result.stderr and "RabbitMQ is not reachable" in result.stderr
