"""One benchmark per machine: the lock every sweep takes, whatever its results folder.

Why machine-wide and not per folder: two sweeps on one machine measure each other, whichever host id or ``--out``
they write to. The lock is an advisory ``flock`` on one file (``/tmp``, shared by every user); its holder writes who
it is into the file, so a refused sweep can name it, and the kernel drops the lock when its holder dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

LOCK_ENV = "CPUBENCH_LOCK"  # the machine-wide lock file (default below); tests point it elsewhere
MACHINE_LOCK = "/tmp/cpubench-benchmark.lock"


class Busy(Exception):
    """Another benchmark holds the machine (or this folder): the message names it."""


class MachineLock:
    """One benchmark at a time on a machine, whatever its results folder: two sweeps at once measure each other.

    An advisory ``flock`` on one file for the whole machine (``/tmp``, shared by every user); the holder writes who
    it is into the file so a refused sweep can name it. The kernel drops the lock when its holder dies.
    """

    def __init__(self, path: str | None = None) -> None:
        self.path = Path(path or os.environ.get(LOCK_ENV) or MACHINE_LOCK)
        self._f: Any = None

    def holder(self) -> str:
        try:
            info = json.loads(self.path.read_text() or "{}")
        except (OSError, json.JSONDecodeError):
            return "another cpubench run"
        return f"pid {info.get('pid')} writing to {info.get('host_dir')} since {info.get('started')}"

    def acquire(self, host_dir: Path, force: bool) -> str | None:
        """Take the lock; with ``force``, go on without it and return who holds it. Raises Busy otherwise."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            raise Busy(
                f"cannot open the machine lock {self.path} ({e.strerror}); set {LOCK_ENV} to another file"
            ) from e
        f = os.fdopen(fd, "r+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = self.holder()
            f.close()
            if force:
                return who
            raise Busy(
                f"another benchmark is running on this machine ({who}); wait for it to finish, or pass --force to "
                "measure anyway (the records will say so)"
            ) from None
        with contextlib.suppress(OSError):
            os.chmod(self.path, 0o666)
        f.seek(0)
        f.truncate()
        f.write(json.dumps({"pid": os.getpid(), "host_dir": str(host_dir.resolve()),
                            "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}))  # fmt: skip
        f.flush()
        self._f = f
        return None

    def release(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
