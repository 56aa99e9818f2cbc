"""A fleet on loopback for tests: a ``dask scheduler`` and ``cpubench fleet worker`` processes standing for hosts.

Each worker has its own machine lock (``CPUBENCH_LOCK``), results folder (``--staging``) and engine-call log, as
separate hosts would. The engine is the fake one (tests/fakeengine.py) with a sleep of batch size / 20 seconds, so
tests choose how long a run takes; a run with ``--variable_update=collective_all_reduce`` runs the real engine, so
multi-worker training is real TensorFlow.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from fakeengine import FAKE_ENGINE, ROOT

from cpubench.host import locks
from cpubench.sweep import session

WRAPPER = """
import os, sys
argv = sys.argv[1:]
if "--variable_update=collective_all_reduce" in argv:
    os.execv(sys.executable, [sys.executable, "-m", "tf_cnn_benchmarks", *argv])
bs = int(dict(a[2:].split("=", 1) for a in argv)["batch_size"])
os.environ["FAKE_SLEEP"] = str(bs / 20)
FAKE = {fake!r}
sys.argv = [FAKE, *argv]
exec(compile(open(FAKE).read(), FAKE, "exec"), {{"__name__": "__main__"}})
"""


def free_port(n: int = 1) -> int:
    """A port p with p..p+n-1 free on loopback (now)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        if p + n < 65536 and all(_free(p + i) for i in range(1, n)):
            return p
    raise RuntimeError("no free ports")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Fleet:
    """A scheduler and named workers, each a real process; :meth:`close` kills every one."""

    def __init__(self, base: Path) -> None:
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        fake = base / "fake_engine.py"
        fake.write_text(FAKE_ENGINE)
        self.engine = base / "fleet_engine.py"
        self.engine.write_text(WRAPPER.format(fake=str(fake)))
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.procs: dict[str, subprocess.Popen] = {}
        self.client: Any = None

    def env(self, host: str | None = None) -> dict[str, str]:
        e = dict(os.environ)
        e.update({"PYTHONPATH": str(ROOT), "CPUBENCH_NO_TF_PROBE": "1", "PYTHONUNBUFFERED": "1"})
        if host:
            e.update({session.ENGINE_ENV: f"{sys.executable} {self.engine}", locks.LOCK_ENV: str(self.lock(host)),
                      "FAKE_CALLS": str(self.base / f"calls-{host}.jsonl")})  # fmt: skip
        return e

    def lock(self, host: str) -> Path:
        return self.base / f"{host}.lock"

    def staging(self, host: str) -> Path:
        return self.base / f"st-{host}"

    def start(self, hosts: list[str]) -> None:
        log = open(self.base / "scheduler.log", "ab")  # noqa: SIM115 - the process owns it
        self.procs["scheduler"] = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(self.port),
             "--no-dashboard"], stdout=log, stderr=subprocess.STDOUT, env=self.env(), cwd=self.base,
        )  # fmt: skip
        for h in hosts:
            self.start_worker(h)
        from distributed import Client

        self.client = Client(self.address, timeout=60)
        self.wait_workers(hosts)

    def start_worker(self, host: str) -> None:
        log = open(self.base / f"worker-{host}.log", "ab")  # noqa: SIM115 - the process owns it
        self.procs[host] = subprocess.Popen(
            [sys.executable, "-m", "cpubench", "fleet", "worker", "--scheduler", self.address, "--host-id", host,
             "--staging", str(self.staging(host)), "--connect-timeout", "60"],
            stdout=log, stderr=subprocess.STDOUT, env=self.env(host), cwd=self.base,
        )  # fmt: skip

    def workers(self) -> dict[str, str]:
        return {w["name"]: a for a, w in self.client.scheduler_info(n_workers=-1)["workers"].items()}

    def wait_workers(self, hosts: list[str], timeout: float = 60) -> None:
        t0 = time.monotonic()
        while not set(hosts) <= set(self.workers()):
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"workers {hosts} did not come up: {self.workers()}")
            time.sleep(0.2)

    def kill(self, host: str, sig: int = signal.SIGKILL) -> None:
        p = self.procs.pop(host)
        p.send_signal(sig)
        p.wait(timeout=30)

    def calls(self, host: str) -> list[dict[str, Any]]:
        f = self.base / f"calls-{host}.jsonl"
        return [json.loads(x) for x in f.read_text().splitlines()] if f.exists() else []

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "cpubench", "fleet", *args], capture_output=True, text=True,
                              env=self.env(), cwd=self.base, timeout=timeout)  # fmt: skip

    def start_run(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "cpubench", "fleet", "run", "--scheduler", self.address, *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env(),
                                cwd=self.base)  # fmt: skip

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        for name in [h for h in self.procs if h != "scheduler"] + ["scheduler"]:
            p = self.procs.pop(name, None)
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(timeout=30)
