"""``comptoir dev``: migrate, seed and run every process locally, with their output prefixed; Ctrl-C stops all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

from comptoir_common.runner import wait_for_broker
from comptoir_common.settings import CommonSettings

from comptoir_dev import seed
from comptoir_dev.registry import SERVICES, migrate_all

COLOURS = ["\033[36m", "\033[33m", "\033[35m", "\033[32m", "\033[34m", "\033[31m", "\033[96m", "\033[93m"]
RESET = "\033[0m"


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def _wait_http(url: str, timeout: float) -> bool:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    return False


def _pipe_output(name: str, colour: str, stream) -> None:
    for line in iter(stream.readline, ""):
        sys.stdout.write(f"{colour}{name:>10}{RESET} | {line}")
        sys.stdout.flush()


def run_dev() -> int:
    common = CommonSettings()
    data_dir = common.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = os.environ.copy()
    env["COMPTOIR_DATA_DIR"] = str(data_dir)
    env.setdefault("COMPTOIR_LOG_FORMAT", "text")
    # A local run may send webhooks to a receiver on this machine over plain http (never in production).
    env.setdefault("WEBHOOKS_ALLOW_HTTP", "true")
    env.setdefault("WEBHOOKS_ALLOW_PRIVATE_TARGETS", "true")
    os.environ.update({"COMPTOIR_DATA_DIR": str(data_dir)})

    problem = wait_for_broker(
        common.amqp_uri,
        common.broker_wait,
        on_retry=lambda problem: print(
            f"{problem}; retrying for up to {common.broker_wait:.0f}s (COMPTOIR_BROKER_WAIT)",
            file=sys.stderr,
            flush=True,
        ),
    )
    if problem:
        print(
            f"\n{problem}.\nComptoir needs RabbitMQ. Start it with `rabbitmq-server -detached` "
            "(or `systemctl start rabbitmq-server`), or point AMQP_URI at a broker, then run `make dev` again.\n",
            file=sys.stderr,
        )
        return 2

    print("Applying migrations…", flush=True)
    migrate_all()
    admin = seed.seed_admin()
    demo = seed.seed_demo()

    processes: list[tuple[str, subprocess.Popen]] = []
    port = int(env.get("COMPTOIR_PORT", "8000"))
    mail_dir = data_dir / "mail"
    commands: list[tuple[str, list[str]]] = []
    if "SMTP_URL" not in os.environ:
        smtp_port = 2525
        while not _port_free(smtp_port):
            smtp_port += 1
        env["SMTP_URL"] = f"smtp://127.0.0.1:{smtp_port}"
        commands.append(
            (
                "mail",
                [
                    sys.executable,
                    "-m",
                    "comptoir_dev.cli",
                    "mailcatcher",
                    "--dir",
                    str(mail_dir),
                    "--port",
                    str(smtp_port),
                ],
            )
        )
    for info in SERVICES:
        env.setdefault(f"{info.env_prefix}HEALTH_PORT", str(info.health_port))
        commands.append((info.name, [sys.executable, "-m", info.package]))
    commands.append(("gateway", [sys.executable, "-m", "comptoir_gateway"]))

    if not _port_free(port):
        print(f"Port {port} is already in use: stop what uses it or set COMPTOIR_PORT.", file=sys.stderr)
        return 2

    for index, (name, command) in enumerate(commands):
        process = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        processes.append((name, process))
        threading.Thread(
            target=_pipe_output, args=(name, COLOURS[index % len(COLOURS)], process.stdout), daemon=True
        ).start()

    def stop(*_args) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    url = f"http://127.0.0.1:{port}"
    try:
        if _wait_http(f"{url}/healthz", timeout=60):
            print(
                f"\n  Comptoir est prêt : {url}\n"
                f"  Administrateur : {admin.email} / {admin.password}\n"
                + "".join(f"  Démo : {login.email} / {login.password}\n" for login in demo)
                + (f"  Mails envoyés : {mail_dir}/*.eml\n" if "mail" in dict(commands) else "")
                + "  Ctrl-C pour tout arrêter.\n",
                flush=True,
            )
        else:
            print("The gateway did not become healthy within 60 s; see the output above.", file=sys.stderr)
        while True:
            for name, process in processes:
                if process.poll() is not None:
                    print(
                        f"\n{name} exited with code {process.returncode}; stopping everything.",
                        file=sys.stderr,
                    )
                    raise KeyboardInterrupt
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nStopping…", flush=True)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for _, process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _, process in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
    return 0
