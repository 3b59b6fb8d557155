"""``comptoir import quadra FILE``: a Quadra export into the customer directory, with a progress bar and a summary.

It writes the crm_sync store directly through the service's own domain code (as ``comptoir seed`` does); the events
go through crm_sync's outbox, published by the running service.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

CLI_ACTOR = {"id": "cli", "role": "admin", "kind": "system", "name": "comptoir import quadra"}


class ProgressBar:
    """``[##########----------]  52 %  2 600/5 000`` on one line of ``stream``."""

    def __init__(self, stream: TextIO = sys.stderr, width: int = 30):
        self.stream = stream
        self.width = width
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        ratio = done / total if total else 1.0
        filled = int(self.width * ratio)
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r[{bar}] {ratio:4.0%}  {done}/{total}")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def run(path: Path, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    from comptoir_common.db import make_engine, make_session_factory, session_scope
    from comptoir_common.errors import ComptoirError
    from comptoir_crm_sync import quadra
    from comptoir_crm_sync.settings import CrmSyncSettings

    if not path.is_file():
        err.write(f"Fichier introuvable : {path}\n")
        return 2
    settings = CrmSyncSettings()
    engine = make_engine(settings.effective_database_url, pool_size=1)
    started = time.perf_counter()
    try:
        with session_scope(make_session_factory(engine)) as session:
            report = quadra.import_file(
                session,
                path.read_bytes(),
                actor=CLI_ACTOR,
                filename=path.name,
                layout=settings.quadra,
                progress=ProgressBar(err),
            )
    except ComptoirError as exc:
        err.write(f"Import refusé : {exc}\n")
        return 2
    finally:
        engine.dispose()
    elapsed = time.perf_counter() - started
    out.write(
        f"Import Quadra ({report.format}) de {path.name} en {elapsed:.1f} s : {report.accounts} comptes clients\n"
        f"  créés : {report.created}\n  mis à jour : {report.updated}\n  inchangés : {report.unchanged}\n"
        f"  désactivés (absents de l'export) : {report.deactivated}\n  rejetés : {report.rejected}\n"
    )
    for why, count in sorted(report.skipped.items()):
        out.write(f"  ignorés, {why} : {count}\n")
    for problem in report.problems[:50]:
        out.write(f"  ligne {problem['line']} : {problem['problem']}\n")
    if len(report.problems) > 50:
        out.write(f"  … et {len(report.problems) - 50} autres remarques\n")
    return 0
