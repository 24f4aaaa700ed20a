"""HTTP routes: the task API, the probes and the OpenAPI document."""

from flask import Flask

from task_manager.api import health, openapi, tasks


def register(app: Flask) -> None:
    app.register_blueprint(health.blueprint)
    app.register_blueprint(openapi.blueprint)
    app.register_blueprint(tasks.blueprint)
