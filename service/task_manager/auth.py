"""Bearer-token authentication: tokens map to principals, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, g, request

from task_manager.errors import Unauthorized
from task_manager.settings import ConfigError, Settings

log = logging.getLogger(__name__)

ANONYMOUS = "anonymous"
API_PREFIX = "/api/"
_CHALLENGE = 'Bearer realm="task-manager"'


@dataclass(frozen=True)
class _Entry:
    digest: bytes
    principal: str


def _digest(token: str) -> bytes:
    # Comparing fixed-length digests keeps the comparison time independent of token length.
    return hashlib.sha256(token.encode()).digest()


def parse_tokens(lines: Iterable[str], variable: str) -> list[tuple[str, str]]:
    """Parses `principal:token` entries; raises ConfigError naming ``variable`` on a bad one."""
    pairs = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        principal, sep, token = line.partition(":")
        principal, token = principal.strip(), token.strip()
        if not sep or not principal or not token:
            raise ConfigError(variable, f"entry {number} is not of the form principal:token")
        if len(token) < 8:
            raise ConfigError(variable, f"entry {number}: the token is shorter than 8 characters")
        pairs.append((principal, token))
    return pairs


class TokenStore:
    """Looks up the principal of a bearer token.

    The tokens file is re-read when it changes (a Kubernetes Secret update swaps the mounted
    file), checked at most every RELOAD_INTERVAL seconds; a file that became invalid is logged
    and the previous tokens stay in force.
    """

    RELOAD_INTERVAL = 2.0

    def __init__(self, pairs: Iterable[tuple[str, str]], settings: Settings | None = None) -> None:
        self._entries = self._build(pairs)
        self._settings = settings
        self._lock = threading.Lock()
        self._next_check = time.monotonic() + self.RELOAD_INTERVAL
        self._file_state = _file_state(settings.auth_tokens_file) if settings else None

    @staticmethod
    def _build(pairs: Iterable[tuple[str, str]]) -> tuple[_Entry, ...]:
        return tuple(_Entry(_digest(token), principal) for principal, token in pairs)

    def __len__(self) -> int:
        return len(self._entries)

    def principal_for(self, token: str) -> str | None:
        self._maybe_reload()
        digest = _digest(token)
        found: str | None = None
        for entry in self._entries:  # no early exit: every entry is compared
            if hmac.compare_digest(entry.digest, digest):
                found = entry.principal
        return found

    def _maybe_reload(self) -> None:
        settings = self._settings
        if settings is None or settings.auth_tokens_file is None:
            return
        if time.monotonic() < self._next_check or not self._lock.acquire(blocking=False):
            return
        try:
            self._next_check = time.monotonic() + self.RELOAD_INTERVAL
            state = _file_state(settings.auth_tokens_file)
            if state == self._file_state:
                return
            # Remembered whether or not it loads: a bad file is logged once, not at every check,
            # and the next change (a fixed file) is picked up.
            self._file_state = state
            try:
                pairs = _load_pairs(settings)
            except ConfigError as exc:
                log.error("tokens file changed but is invalid; keeping the previous tokens: %s",
                          exc.problem)  # fmt: skip
                return
            self._entries = self._build(pairs)
            log.info("tokens file reloaded", extra={"tokens": len(self._entries)})
        finally:
            self._lock.release()

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenStore:
        return cls(_load_pairs(settings), settings)


def _file_state(path: Path | None) -> tuple[int, int, int] | None:
    if path is None:
        return None
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _load_pairs(settings: Settings) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    if settings.auth_tokens is not None:
        pairs += parse_tokens(
            settings.auth_tokens.get_secret_value().split(","), "TASK_MANAGER_AUTH_TOKENS"
        )
    if settings.auth_tokens_file is not None:
        variable = "TASK_MANAGER_AUTH_TOKENS_FILE"
        try:
            text = settings.auth_tokens_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                variable, f"cannot read {settings.auth_tokens_file}: {exc.strerror}"
            ) from None
        pairs += parse_tokens(text.splitlines(), variable)
    if settings.auth_enabled and not pairs:
        raise ConfigError(
            "TASK_MANAGER_AUTH_TOKENS_FILE",
            "authentication is enabled but no tokens are configured; set "
            "TASK_MANAGER_AUTH_TOKENS_FILE or TASK_MANAGER_AUTH_TOKENS, or "
            "TASK_MANAGER_AUTH_ENABLED=false",
        )
    return pairs


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def install(app: Flask, settings: Settings, store: TokenStore) -> None:
    """Requires a valid bearer token on /api/ paths and records the principal in ``g``."""
    if not settings.auth_enabled:
        log.warning(
            "authentication is DISABLED (TASK_MANAGER_AUTH_ENABLED=false): every request acts "
            "as the principal %r",
            ANONYMOUS,
        )

    @app.before_request
    def _authenticate() -> None:
        if not request.path.startswith(API_PREFIX):
            return
        if not settings.auth_enabled:
            g.principal = ANONYMOUS
            return
        token = _bearer_token()
        if token is None:
            raise Unauthorized(
                "A bearer token is required.", headers={"WWW-Authenticate": _CHALLENGE}
            )
        principal = store.principal_for(token)
        if principal is None:
            raise Unauthorized(
                "The bearer token is not valid.",
                headers={"WWW-Authenticate": _CHALLENGE + ', error="invalid_token"'},
            )
        g.principal = principal


def current_principal() -> str:
    principal: str = g.principal
    return principal
