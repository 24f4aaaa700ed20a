"""Server spans for the Flask app: the sampler decides first, attributes only for recorded spans.

A WSGI middleware on the OpenTelemetry API and SDK in place of opentelemetry-instrumentation-flask,
which collects every request attribute (twice) before the sampler runs, so an unsampled request
cost nearly as much as a sampled one (bench/README.md). On a sampled request the span has the
instrumentation's name, kind, status, exception event and stable HTTP semantic-convention
attributes (tests/service/test_http_tracing.py runs both on the same requests and compares them).
Not carried over: the instrumentation's optional captured headers and its OTel metrics (the
service's request metrics are Prometheus'); the sampler sees no attributes, only the trace id,
parent and name.

An unsampled request gets a non-recording span (its trace id still propagates and reaches the
access line) and runs with instrumentation suppressed, so the SQL statement hooks do nothing for
spans that would be dropped anyway.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flask import Flask, request
from opentelemetry import context, propagate, trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.propagators.textmap import Getter
from opentelemetry.semconv.attributes.client_attributes import CLIENT_ADDRESS, CLIENT_PORT
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.http_attributes import (
    HTTP_REQUEST_METHOD,
    HTTP_REQUEST_METHOD_ORIGINAL,
    HTTP_RESPONSE_STATUS_CODE,
    HTTP_ROUTE,
)
from opentelemetry.semconv.attributes.network_attributes import NETWORK_PROTOCOL_VERSION
from opentelemetry.semconv.attributes.server_attributes import SERVER_ADDRESS, SERVER_PORT
from opentelemetry.semconv.attributes.url_attributes import URL_PATH, URL_QUERY, URL_SCHEME
from opentelemetry.semconv.attributes.user_agent_attributes import USER_AGENT_ORIGINAL
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.http import (
    detect_synthetic_user_agent,
    normalize_user_agent,
    sanitize_method,
)

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

# user_agent.synthetic.type is not in the stable attribute modules yet.
USER_AGENT_SYNTHETIC_TYPE = "user_agent.synthetic.type"


class _EnvironGetter(Getter[Environ]):
    """Reads propagation headers from a WSGI environ (HTTP_TRACEPARENT for traceparent)."""

    def get(self, carrier: Environ, key: str) -> list[str] | None:
        value = carrier.get("HTTP_" + key.upper().replace("-", "_"))
        return None if value is None else [value]

    def keys(self, carrier: Environ) -> list[str]:
        return [k[5:].lower().replace("_", "-") for k in carrier if k.startswith("HTTP_")]


_GETTER = _EnvironGetter()


def _span_method(environ: Mapping[str, Any]) -> tuple[str, str]:
    """(the request method as sent, its sanitised form: _OTHER for an unknown method)."""
    original = str(environ.get("REQUEST_METHOD", "")).strip()
    return original, sanitize_method(original)


def _request_attributes(environ: Mapping[str, Any], original: str, method: str) -> dict[str, Any]:
    """The stable HTTP server attributes opentelemetry-instrumentation-wsgi collects."""
    attributes: dict[str, Any] = {HTTP_REQUEST_METHOD: method}
    if original != method:
        attributes[HTTP_REQUEST_METHOD_ORIGINAL] = original
    _put(attributes, URL_SCHEME, environ.get("wsgi.url_scheme"))
    _put(attributes, SERVER_ADDRESS, environ.get("HTTP_HOST"))
    _put_int(attributes, SERVER_PORT, environ.get("SERVER_PORT"))
    if environ.get("RAW_URI") or environ.get("REQUEST_URI"):
        _put(attributes, URL_PATH, environ.get("PATH_INFO"))
        _put(attributes, URL_QUERY, environ.get("QUERY_STRING"))
    remote_addr = environ.get("REMOTE_ADDR")
    _put(attributes, CLIENT_ADDRESS, remote_addr)
    _put_int(attributes, CLIENT_PORT, environ.get("REMOTE_PORT"))
    remote_host = environ.get("REMOTE_HOST")
    if remote_host and remote_host != remote_addr:
        attributes[CLIENT_ADDRESS] = remote_host
    user_agent = normalize_user_agent(environ.get("HTTP_USER_AGENT"))
    if user_agent:
        attributes[USER_AGENT_ORIGINAL] = user_agent
        _put(attributes, USER_AGENT_SYNTHETIC_TYPE, detect_synthetic_user_agent(user_agent))
    protocol = str(environ.get("SERVER_PROTOCOL", ""))
    if protocol.upper().startswith("HTTP/"):
        protocol = protocol[5:]
    _put(attributes, NETWORK_PROTOCOL_VERSION, protocol)
    return attributes


def _put(attributes: dict[str, Any], key: str, value: Any) -> None:
    if value:
        attributes[key] = value


def _put_int(attributes: dict[str, Any], key: str, value: Any) -> None:
    if value:
        with contextlib.suppress(TypeError, ValueError):
            attributes[key] = int(value)


def _set_response_status(span: trace.Span, status: str) -> None:
    """http.response.status_code, and for a 5xx (or a status that is not a number) the
    span status ERROR and error.type, as the instrumentation sets them for a server span."""
    code_text = status.split(" ", 1)[0]
    try:
        code = int(code_text)
    except ValueError:
        span.set_attribute(ERROR_TYPE, code_text)
        span.set_status(Status(StatusCode.ERROR, "Non-integer HTTP status: " + code_text))
        return
    span.set_attribute(HTTP_RESPONSE_STATUS_CODE, code)
    if code < 100 or code >= 500:
        span.set_attribute(ERROR_TYPE, code_text)
        span.set_status(Status(StatusCode.ERROR))


def _record_exception(span: trace.Span, exc: BaseException) -> None:
    """What trace.use_span does for an exception leaving the span."""
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


class TracingMiddleware:
    """Opens the server span of every request except the excluded paths."""

    def __init__(self, app: WSGIApp, tracer: trace.Tracer, excluded_paths: frozenset[str]):
        self._app = app
        self._tracer = tracer
        self._excluded = excluded_paths
        # Extracting the parent costs a propagator pass; skip it when no header it reads is sent.
        fields = propagate.get_global_textmap().fields
        self._fields = tuple("HTTP_" + field.upper().replace("-", "_") for field in fields)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.rstrip("/") in self._excluded:
            return self._app(environ, start_response)
        parent = (
            propagate.extract(environ, getter=_GETTER)
            if any(field in environ for field in self._fields)
            else None
        )
        original, method = _span_method(environ)
        # The instrumentation's name until the route is known (route_span_name).
        target = path.strip()
        name = "HTTP" if method == "_OTHER" else f"{method} {target}" if target else method
        span = self._tracer.start_span(name, context=parent, kind=SpanKind.SERVER)
        token = context.attach(trace.set_span_in_context(span, parent))
        try:
            if not span.is_recording():
                with suppress_instrumentation():
                    return self._app(environ, start_response)
            span.set_attributes(_request_attributes(environ, original, method))

            def _start_response(status: str, headers: Any, *args: Any) -> Any:
                _set_response_status(span, status)
                return start_response(status, headers, *args)

            # An exception is recorded by the teardown hook (Flask hands every one to it).
            return self._app(environ, _start_response)
        finally:
            context.detach(token)
            span.end()


def route_span_name(method: str, rule: str) -> str:
    return f"{'HTTP' if method == '_OTHER' else method} {rule}"


def instrument(app: Flask, tracer: trace.Tracer, excluded_paths: frozenset[str]) -> None:
    """Wraps the app in TracingMiddleware; Flask hooks add the route and exceptions."""
    app.wsgi_app = TracingMiddleware(app.wsgi_app, tracer, excluded_paths)  # type: ignore[method-assign]

    @app.before_request
    def _route() -> None:
        span = trace.get_current_span()
        rule = request.url_rule
        if rule is not None and span.is_recording():
            method = sanitize_method(str(request.environ.get("REQUEST_METHOD", "")).strip())
            span.update_name(route_span_name(method, rule.rule))
            span.set_attribute(HTTP_ROUTE, rule.rule)

    @app.teardown_request
    def _exception(exc: BaseException | None) -> None:
        if exc is not None:
            span = trace.get_current_span()
            if span.is_recording():
                _record_exception(span, exc)
