"""The `task-manager` console entry point: serve, migrate, check-config."""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from task_manager import __version__

if TYPE_CHECKING:
    from task_manager.settings import Settings

log = logging.getLogger("task_manager.cli")

EXIT_CONFIG = 2


def _serve(settings: Settings) -> int:
    from task_manager.app import create_app
    from task_manager.server import Server
    from task_manager.storage.migrate import MigrationError

    try:
        app = create_app(settings)
    except MigrationError as exc:
        print(f"task-manager: {exc}", file=sys.stderr)
        return 1
    return Server(app).run()


def _migrate(settings: Settings) -> int:
    from task_manager.storage import build_engine
    from task_manager.storage.migrate import upgrade

    engine = build_engine(settings.database_url.get_secret_value(), pool_size=1)
    try:
        head = upgrade(engine)
    except Exception:
        log.exception("schema migration failed")
        return 1
    finally:
        engine.dispose()
    log.info("database schema at head", extra={"revision": head})
    return 0


def _check_config(settings: Settings) -> int:
    from task_manager.auth import TokenStore

    TokenStore.from_settings(settings)  # the tokens file must be readable and well formed
    for name, value in sorted(settings.redacted().items()):
        print(f"{name}={value}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="task-manager", description="Task manager REST API (configured by environment)."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve the API with waitress (metrics on their own port)")
    commands.add_parser("migrate", help="upgrade the database schema to head (Alembic)")
    check = commands.add_parser(
        "check-config", help="print the effective configuration, secrets redacted"
    )
    check.add_argument(
        "--markdown", action="store_true", help="print docs/configuration.md instead"
    )
    commands.add_parser("openapi", help="print the OpenAPI document")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    collecting = gc.isenabled()
    if args.command == "serve":
        # Start-up imports about 700 modules and builds the app: some 130,000 objects that live as
        # long as the process, and well under 1% garbage. The cyclic collector would walk them
        # in about 190 collections (about 50 ms, a tenth of the time to the first /readyz 200:
        # bench/README.md). It stays off until server.tune_interpreter has frozen them, with the
        # start-up's few unreachable objects (about 0.2 MB) among them.
        gc.disable()
    try:
        return _command(args)
    finally:
        if collecting:
            gc.enable()


def _command(args: argparse.Namespace) -> int:
    # Imported here, not at the top, so that `serve` imports them with the collector off.
    from task_manager.logging import configure_logging
    from task_manager.settings import ConfigError, Settings

    if args.command == "check-config" and args.markdown:
        from task_manager.configuration_doc import render_configuration_markdown

        sys.stdout.write(render_configuration_markdown())
        return 0
    if args.command == "openapi":
        from task_manager.api.openapi import document_json

        sys.stdout.write(document_json())
        return 0
    try:
        settings = Settings.from_env()
        configure_logging(settings.log_level)
        if args.command == "serve":
            return _serve(settings)
        if args.command == "migrate":
            return _migrate(settings)
        return _check_config(settings)
    except ConfigError as exc:
        print(f"task-manager: invalid configuration: {exc}", file=sys.stderr)
        return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
