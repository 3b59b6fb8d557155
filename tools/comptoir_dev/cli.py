"""The ``comptoir`` command."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    import warnings

    # nameko imports eventlet, which warns that it is in bug-fix mode (see docs/architecture.md).
    warnings.filterwarnings("ignore", message=r"(?s).*Eventlet is deprecated")
    parser = argparse.ArgumentParser(
        prog="comptoir", description="Comptoir: commandes de développement et d'exploitation"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("dev", help="migrate, seed and run every process locally")
    migrate = commands.add_parser(
        "migrate", help="apply the migrations of every service (or of the named ones)"
    )
    migrate.add_argument("services", nargs="*")
    commands.add_parser("seed", help="create the first admin and the demo data (idempotent)")
    revision = commands.add_parser("makemigration", help="autogenerate a migration for a service")
    revision.add_argument("service")
    revision.add_argument("-m", "--message", required=True)
    importer = commands.add_parser("import", help="import data from other systems")
    import_kinds = importer.add_subparsers(dest="kind", required=True)
    quadra_import = import_kinds.add_parser(
        "quadra", help="a Quadra export (ASCII, or mdb-export CSV of Comptes) into the customer directory"
    )
    quadra_import.add_argument("file", type=Path)
    catcher = commands.add_parser("mailcatcher", help="a local SMTP server keeping mails as .eml files")
    catcher.add_argument("--dir", type=Path, default=Path("var/mail"))
    catcher.add_argument("--port", type=int, default=2525)
    events = commands.add_parser("events", help="the event catalogue (list, or print the AsyncAPI document)")
    events.add_argument("action", choices=["list", "asyncapi"])
    events.add_argument("--output", type=Path, help="write the AsyncAPI document to this file")
    dlq = commands.add_parser("dlq", help="dead-letter queues: list them, or replay their messages")
    dlq.add_argument("action", choices=["list", "replay"])
    dlq.add_argument(
        "queue", nargs="?", help="dlq.<queue> to replay (replay all dead-letter queues with --all)"
    )
    dlq.add_argument("--all", action="store_true", help="replay every dead-letter queue")
    dlq.add_argument("--limit", type=int, default=None, help="replay at most this many messages per queue")
    dlq.add_argument(
        "--via-exchange",
        action="store_true",
        help="republish to the source exchange and routing key (every bound queue gets it) instead of the queue",
    )
    simplydesk = import_kinds.add_parser(
        "simplydesk", help="a Simplydesk export (CSV or XLSX), through the API"
    )
    simplydesk.add_argument("tickets_file", type=Path, help="the tickets file (CSV or XLSX)")
    simplydesk.add_argument("--messages", type=Path, help="the messages file, if separate (CSV or XLSX)")
    simplydesk.add_argument("--attachments", type=Path, help="the folder holding the attachment files")
    simplydesk.add_argument(
        "--mapping", type=Path, help="the column mapping (TOML; French defaults otherwise)"
    )
    simplydesk.add_argument("--dry-run", action="store_true", help="report what would be done, write nothing")
    simplydesk.add_argument(
        "--url", default=os.environ.get("COMPTOIR_URL", "http://127.0.0.1:8000"), help="Comptoir's address"
    )
    simplydesk.add_argument("--email", help="admin account (password in COMPTOIR_PASSWORD, or asked)")
    simplydesk.add_argument("--batch-size", type=int, default=200, help="tickets per request (max 500)")
    simplydesk.add_argument("--rejected-log", type=Path, help="where to write rejected rows (CSV)")
    simplydesk.add_argument(
        "--strict", action="store_true", help="exit with status 1 if any row was rejected"
    )
    args = parser.parse_args(argv)

    if args.command == "import" and args.kind == "simplydesk":
        from comptoir_dev import simplydesk_import

        return simplydesk_import.main(args)

    if args.command == "events":
        from comptoir_common import event_catalogue

        if args.action == "asyncapi":
            if args.output:
                args.output.write_text(event_catalogue.asyncapi_json(), encoding="utf-8")
            else:
                sys.stdout.write(event_catalogue.asyncapi_json())
            return 0
        for spec in event_catalogue.events():
            print(f"{spec.type:28} v{spec.version}  {spec.exchange:20} {spec.summary}")
        return 0
    if args.command == "dlq":
        from comptoir_dev import dlq as dead_letters

        return dead_letters.main(args)

    if args.command == "dev":
        from comptoir_dev.launcher import run_dev

        return run_dev()
    if args.command == "migrate":
        from comptoir_dev.registry import SERVICES, migrate_all, service

        chosen = [service(name) for name in args.services] or list(SERVICES)
        migrate_all(chosen)
        print("up to date: " + ", ".join(info.name for info in chosen))
        return 0
    if args.command == "seed":
        from comptoir_dev import seed

        admin = seed.seed_admin()
        print(f"admin: {admin.email} ({'created' if admin.created else 'already there'})")
        for login in seed.seed_demo():
            print(f"demo: {login.email} ({'created' if login.created else 'already there'})")
        return 0
    if args.command == "makemigration":
        import tempfile

        from comptoir_common.migrations import make_revision

        from comptoir_dev.registry import service

        info = service(args.service)
        with tempfile.TemporaryDirectory() as scratch:
            make_revision(info.migrations_dir, f"sqlite:///{scratch}/scratch.db", args.message)
        return 0
    if args.command == "import" and args.kind == "quadra":
        from comptoir_dev.quadra_import import run as import_quadra

        return import_quadra(args.file)
    if args.command == "mailcatcher":
        import logging

        from comptoir_dev.mailcatcher import serve

        logging.basicConfig(level=logging.INFO, format="%(message)s")
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        serve(args.dir, port=args.port)
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
