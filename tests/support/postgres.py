"""A throwaway PostgreSQL server (Debian's, from ci/postgres.sh) for tests that need a real one."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from support.net import free_port


def _pg_bindir() -> Path:
    configured = os.environ.get("TASK_MANAGER_TEST_PG_BINDIR")
    candidates = [Path(configured)] if configured else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for candidate in candidates:
        if (candidate / "initdb").exists():
            return candidate
    raise RuntimeError("PostgreSQL is not installed: run ci/postgres.sh (make test-service does)")


@dataclass
class Postgres:
    """A running server: trusted on loopback; password-protected on any other listen address."""

    port: int
    user: str = "task_manager"
    password: str = ""
    # pg_ctl with the server's data directory and options: control("stop") / control("start").
    control: Callable[[str], None] = field(default=lambda _action: None, repr=False)

    def stop(self) -> None:
        """A fast shutdown: sessions are ended, committed work is flushed, the port closes."""
        self.control("stop")

    def start(self) -> None:
        self.control("start")

    def url(self, database: str = "postgres", host: str = "127.0.0.1") -> str:
        auth = f"{self.user}:{self.password}" if host != "127.0.0.1" else self.user
        return f"postgresql://{auth}@{host}:{self.port}/{database}"

    def create_database(self, host: str = "127.0.0.1") -> str:
        """A new empty database; its URL for clients connecting to host."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres", autocommit=True
        ) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name, host)


@contextmanager
def running_postgres(also_listen_on: str = "", clients: str = "") -> Iterator[Postgres]:
    """initdb + pg_ctl in a temp dir, as the `postgres` user when running as root.

    also_listen_on adds a listen address beside 127.0.0.1 (e.g. a pod bridge's address), and clients
    (a CIDR) may connect there with the generated password.
    """
    bindir = _pg_bindir()
    base = Path(tempfile.mkdtemp(prefix="tm-pg-"))
    data, sockets = base / "data", base / "run"
    sockets.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        shutil.chown(base, "postgres")
        shutil.chown(sockets, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    server = Postgres(port=free_port(), password=uuid.uuid4().hex)

    def pg(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, timeout=180)

    pwfile = base / "pw"
    pwfile.write_text(server.password + "\n")
    if as_user:
        shutil.chown(pwfile, "postgres")
    pg(str(bindir / "initdb"), "-D", str(data), "-U", server.user, "--auth=trust", "-E", "UTF8",
       f"--pwfile={pwfile}")  # fmt: skip
    pwfile.unlink()
    if clients:
        with (data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {clients} scram-sha-256\n")
    listen = ",".join(a for a in ("127.0.0.1", also_listen_on) if a)
    options = (
        f"-p {server.port} -k {sockets} -c listen_addresses={listen} -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )

    def control(action: str) -> None:
        extra = ["-m", "fast"] if action == "stop" else ["-o", options, "-l", str(base / "log")]
        pg(str(bindir / "pg_ctl"), "-D", str(data), *extra, "-w", "-t", "120", action)

    server.control = control
    control("start")
    try:
        yield server
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(base, ignore_errors=True)
