"""A throwaway PostgreSQL cluster of the soak's own, in a temporary folder on a free port: the
soak stops and starts it (its database outage) without touching the shared server on 5432.

As root, the cluster runs as the `postgres` user (PostgreSQL refuses to run as root); otherwise
as the current user. `/usr/lib/postgresql/<version>/bin` (Debian's layout) or PATH provides
initdb and pg_ctl.
"""

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench import harness


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name)]
    if not found[-1]:
        raise RuntimeError(f"{name} not found: install PostgreSQL's server package")
    return found[-1]


def available() -> bool:
    try:
        _bin("initdb"), _bin("pg_ctl")
    except RuntimeError:
        return False
    return True


class Cluster:
    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="soak-postgres-"))
        self.data, self.port = self.folder / "data", harness._free_port()
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")
        self.running = False

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/soak"

    def _run(self, name: str, *args: str) -> None:
        command = [_bin(name), *args]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(f"{name} failed ({done.returncode}): {done.stderr[-2000:]}")

    def create(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()

    def start(self) -> None:
        # fsync off: a throwaway cluster; what is measured is the shop, not this disk.
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.folder / "postgres.log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """`fast` ends every session (their transactions roll back), as a restart does."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
        self.running = False

    def destroy(self) -> None:
        try:
            if self.running:
                self.stop("immediate")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
