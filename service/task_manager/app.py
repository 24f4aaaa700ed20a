"""The application factory: wires settings, storage, auth, API and observability."""

from __future__ import annotations

import logging
from importlib import resources

from flask import Flask

from task_manager import __version__, api, auth, errors, metrics, storage
from task_manager import logging as logs
from task_manager.runtime import Runtime, attach
from task_manager.settings import Settings
from task_manager.storage.migrate import upgrade_in_child
from task_manager.tracing import setup_tracing

log = logging.getLogger(__name__)


def build_revision() -> str:
    """Source revision baked into the package at image build time (REVISION file), if any."""
    try:
        return resources.files("task_manager").joinpath("REVISION").read_text().strip() or "unknown"
    except (FileNotFoundError, OSError):
        return "unknown"


def create_app(settings: Settings) -> Flask:
    """Builds the WSGI app. Raises ConfigError when the configuration cannot work."""
    tokens = auth.TokenStore.from_settings(settings)
    app = Flask("task_manager")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.url_map.strict_slashes = False

    engine = storage.build_engine(
        settings.database_url.get_secret_value(), pool_size=settings.threads
    )
    if settings.migrate_on_start:
        head = upgrade_in_child(engine)
        log.info("database schema at head", extra={"revision": head})
    observer = metrics.Metrics(version=__version__, revision=build_revision())
    repository = storage.TaskRepository(engine, observe=observer.observe_db)
    observer.register_task_counts(repository.count_by_status)

    # Tracing first: its before_request hook opens the server span ahead of the others, so that a
    # request refused by auth is traced and its access line carries the trace id.
    tracing = setup_tracing(settings, app, engine, __version__)
    logs.instrument(app)
    observer.instrument(app)
    auth.install(app, settings, tokens)
    errors.register_error_handlers(app)
    api.register(app)
    attach(
        app, Runtime(settings=settings, repository=repository, metrics=observer, tracing=tracing)
    )
    return app
