"""A local SMTP server that keeps every mail as an ``.eml`` file: ``make dev``'s outgoing mail goes here."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path

from aiosmtpd.controller import Controller

log = logging.getLogger(__name__)


class SaveToDirectory:
    """aiosmtpd handler writing each accepted message to ``<directory>/<time>-<id>.eml``."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}.eml"
        temp = self.directory / f".{name}"
        temp.write_bytes(envelope.original_content or envelope.content)
        temp.rename(self.directory / name)
        log.info("mail kept: %s to %s", name, ", ".join(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


def serve(directory: Path, host: str = "127.0.0.1", port: int = 2525) -> None:
    controller = Controller(SaveToDirectory(directory), hostname=host, port=port)
    controller.start()
    print(f"mailcatcher: SMTP on {host}:{port}, mails kept in {directory}", flush=True)
    try:
        asyncio.run(_forever())
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


async def _forever() -> None:
    while True:
        await asyncio.sleep(3600)
