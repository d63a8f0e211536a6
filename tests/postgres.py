"""REAL PostgreSQL for the tests: the machine's server (started if it does not answer), a scratch
database per test, and private throw-away servers that the fault tests may kill.

RSAFE_TEST_POSTGRES_URL names the shared server's admin database
(default postgresql://postgres@127.0.0.1:5432/postgres, trust auth as on this machine kind).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from conftest import wait_until

SHARED_ADMIN_URL = os.environ.get(
    "RSAFE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def ensure_shared_postgres() -> str:
    """The shared server's admin URL; starts the Debian cluster when nothing answers."""
    if answers(SHARED_ADMIN_URL):
        return SHARED_ADMIN_URL
    clusters = Path("/etc/postgresql")
    for version in sorted(p.name for p in clusters.iterdir()) if clusters.is_dir() else []:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=False
        )
    wait_until(lambda: answers(SHARED_ADMIN_URL), 30, "PostgreSQL on 127.0.0.1:5432")
    return SHARED_ADMIN_URL


def database_url(admin_url: str, name: str) -> str:
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}"


@contextlib.contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    """A new empty database `rsafe_test_<random>`, dropped afterwards (even if still in use)."""
    name = f"rsafe_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _postgres_bin(tool: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{tool}"))
    if found:
        return str(found[-1])
    path = shutil.which(tool)
    if path is None:
        raise RuntimeError(f"{tool} not found (install postgresql)")
    return path


def _as_postgres_user(command: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@dataclass
class PrivatePostgres:
    """A PostgreSQL server of a test's own, in a temporary folder, free to be killed."""

    directory: Path
    port: int

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            _as_postgres_user([_postgres_bin("pg_ctl"), "-D", str(self.data), *args]),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
        self._pg_ctl("-w", "-t", "60", "-l", str(self.directory / "log"), "-o", options, "start")
        wait_until(lambda: answers(self.url), 30, f"private PostgreSQL on port {self.port}")

    def kill(self) -> None:
        """Stop it the hard way (immediate: no checkpoint, clients cut off, crash recovery next)."""
        self._pg_ctl("-m", "immediate", "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def remove(self) -> None:
        if self.running():
            with contextlib.suppress(subprocess.CalledProcessError):
                self._pg_ctl("-m", "immediate", "-w", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)


def private_postgres(port: int) -> PrivatePostgres:
    """initdb a fresh cluster (trust auth, user postgres) and start it on `port`."""
    directory = Path(tempfile.mkdtemp(prefix="rsafe-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    server = PrivatePostgres(directory, port)
    subprocess.run(
        _as_postgres_user(
            [_postgres_bin("initdb"), "-D", str(server.data), "-U", "postgres", "-A", "trust"]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        server.start()
    except BaseException:
        server.remove()
        raise
    return server


def count_rows(url: str, table: str = "decisions") -> int:
    try:
        with psycopg.connect(url, connect_timeout=2) as connection:
            row = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
    except (psycopg.OperationalError, psycopg.errors.UndefinedTable):
        return -1
    assert row is not None
    return int(row[0])


def decision_ids(url: str) -> list[str]:
    with psycopg.connect(url) as connection:
        return [str(row[0]) for row in connection.execute("SELECT id FROM decisions").fetchall()]
