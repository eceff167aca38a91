"""A throwaway PostgreSQL instance for tests: initdb in a temporary folder, listening only on a
free port of 127.0.0.1 (no Unix socket), stopped and deleted afterwards.

PostgreSQL refuses to run as root, and CI runs as root: there every server command runs as the
`postgres` user through `runuser`, in a folder under /tmp (the test's own temporary folders are
private to root). Authentication is `trust` for this loopback-only instance, so no password
exists to leak into files, command lines or logs.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from mlflow_server import free_port

INSTALL_HINT = ("PostgreSQL is not installed: apt-get install postgresql (or set "
                "LATENTSCI_PG_BIN to the folder holding initdb and pg_ctl)")


def postgres_bin() -> Path | None:
    """The folder holding initdb and pg_ctl (Debian keeps them off the PATH), or None."""
    given = os.environ.get("LATENTSCI_PG_BIN")
    candidates = [Path(given)] if given else sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                                                    reverse=True)
    on_path = shutil.which("pg_ctl")
    candidates += [Path(on_path).parent] if on_path else []
    return next((c for c in candidates if (c / "initdb").is_file() and (c / "pg_ctl").is_file()),
                None)


class LocalPostgres:
    """A running PostgreSQL with an empty `mlflow` database; `uri` is its SQLAlchemy URI (naming
    psycopg2: SQLAlchemy 2.1 takes plain postgresql:// to mean psycopg 3)."""

    def __init__(self, bin_dir: Path):
        self.bin = bin_dir
        as_root = os.geteuid() == 0
        self.run_as = ["runuser", "-u", "postgres", "--"] if as_root else []
        self.folder = Path(tempfile.mkdtemp(prefix="latentsci-pg-", dir="/tmp" if as_root else None))
        self.data = self.folder / "data"
        self.port = free_port()
        if as_root:
            user = pwd.getpwnam("postgres")
            os.chown(self.folder, user.pw_uid, user.pw_gid)
        self.started = False
        try:
            self._server("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                         "-E", "UTF8", "--no-sync")
            options = (f"-c listen_addresses=127.0.0.1 -p {self.port} "
                       "-c unix_socket_directories='' -c fsync=off")
            self._server("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"),
                         "-o", options, "-w", "-t", "60", "start")
            self.started = True
            self._create_database("mlflow")
        except Exception:
            self.stop()
            raise
        self.uri = f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/mlflow"

    def _server(self, tool: str, *args: str) -> None:
        """Run one of PostgreSQL's server tools (as `postgres` when we are root)."""
        done = subprocess.run([*self.run_as, str(self.bin / tool), *args], capture_output=True,
                              text=True, timeout=120, cwd=self.folder)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr[-2000:]}")

    def connect(self, database: str = "mlflow"):
        """A psycopg2 connection to one of its databases."""
        import psycopg2

        return psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres",
                                dbname=database)

    def _create_database(self, name: str) -> None:
        """CREATE DATABASE (outside a transaction, as PostgreSQL requires)."""
        connection = self.connect("postgres")
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name}")
        connection.close()

    def stop(self) -> None:
        """Stop the server (no shutdown checkpoint: the data are thrown away) and delete it."""
        if self.started:
            self._server("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            self.started = False
        shutil.rmtree(self.folder, ignore_errors=True)
