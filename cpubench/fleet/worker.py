"""The host's side of a fleet: ``cpubench fleet worker`` and the task each benchmark host runs.

The worker is a Dask worker named by the host id, with one thread, a resource ``host=1`` and no memory limit, run
in this process without a nanny. Why no nanny: Dask's nanny sets ``OMP_NUM_THREADS=1``, ``MKL_NUM_THREADS=1``,
``OPENBLAS_NUM_THREADS=1`` and ``MALLOC_TRIM_THRESHOLD_`` in the worker it spawns (``distributed.nanny
.pre-spawn-environ``), which would change every measurement; without one, the worker's environment is the shell's
that started it, as with ``cpubench run``. (The nanny's other service, restarting a dead worker, is the job of
whatever starts the worker: systemd, a loop in a shell.) Why no memory limit: a benchmark's memory is what it
measures; Dask must not pause or kill it for using memory.

The task (:func:`run_host`) runs the real ``cpubench run`` in a child process, into this host's own results folder
(the worker's ``--staging``, by default ``data/`` like ``cpubench run``), and sends each record home (with its log
and the host record) as soon as it is filed, as a Dask event on the run's topic. Why a child and not the Runner in
this thread: the runner owns signals (Ctrl-C, SIGTERM) and the machine lock, and signals are the main thread's; a
child also keeps TensorFlow's and the engine's state out of the worker. The child dies with the task's thread
(``PR_SET_PDEATHSIG``), so a worker killed with SIGKILL leaves no benchmark running and no lock held.

Why the worker keeps its folder (and is also seeded from home): the host's folder is where its evidence lives (kept
result JSONs, logs of every attempt, a run measured but not yet recorded), so resuming there is exactly ``cpubench
run``'s resume; a run finished but not yet home when the connection went is sent at the next fleet run (the
dispatcher says which records it has, and the task sends the rest). Records home has and the host lacks (a host
reinstalled, a fresh ``--staging``) are appended to the host's folder first, so a rerun never measures what is home.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from cpubench.fleet.connect import FleetError
from cpubench.fleet.home import MAX_LOG_CHARS, log_parts, record_key, store_keys
from cpubench.results import store
from tf_cnn_benchmarks import hostfacts
from tf_cnn_benchmarks.record import RecordError, RunRecord

STAGING: Path = Path("data")  # this worker's results root; set by serve()
FLEET_DIR = ".fleet"  # under the staging root: the configs the tasks ran (a host id never starts with a dot)
POLL_S = 0.25
HEARTBEAT_S = 2  # the child's plain heartbeat: what it runs, for `fleet status`

_TODO = re.compile(r"^cpubench: .* on (\S+): (\d+) runs to do, (\d+) already done")
_RUNNING = re.compile(r"^\[(\d+)/(\d+)\] (.+?): running ")
_FINISHED = re.compile(r"^\[(\d+)/(\d+)\] (.+?): (ok|FAILED|TIMEOUT|SKIPPED)\b")


def serve(address: str, host_id: str, staging: Path, sec: Any, listen: str | None = None, timeout: float = 10) -> int:
    """Run this host's Dask worker until it is stopped (Ctrl-C, SIGTERM, the scheduler closing); FleetError in one
    line when the scheduler cannot be reached within ``timeout`` seconds."""
    import asyncio

    import dask
    from distributed import Worker

    global STAGING
    STAGING = staging.resolve()
    STAGING.mkdir(parents=True, exist_ok=True)

    async def main() -> None:
        w = Worker(
            address,
            name=host_id,
            nthreads=1,
            resources={"host": 1},
            memory_limit=0,
            security=sec,
            host=listen,
            validate=False,
            dashboard=False,
            local_directory=str(STAGING / FLEET_DIR / "dask"),
        )
        await w
        loop = asyncio.get_running_loop()
        for s in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(s, lambda: asyncio.ensure_future(w.close(reason="cpubench fleet worker stopped")))
        await w.finished()

    with dask.config.set({"distributed.comm.timeouts.connect": f"{timeout}s"}):
        try:
            asyncio.run(main())
        except (OSError, TimeoutError) as e:
            raise FleetError(f"no scheduler at {address} within {timeout:g} s ({type(e).__name__})") from None
        except KeyboardInterrupt:
            pass
    return 0


def _tie(parent: int) -> Any:
    """Before exec in the child: SIGTERM when the task's thread ends (the worker killed): the runner then stops its
    engine and leaves its records whole."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def setup() -> None:
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(1)

    return setup


class _Lines:
    """The child's output, read by a thread: the last lines (for a failure's reason) and the sweep's progress."""

    def __init__(self, stream: Any) -> None:
        self.tail: collections.deque[str] = collections.deque(maxlen=40)
        self.total: int | None = None
        self.already = 0
        self.current: str | None = None
        self.changed = True
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for raw in stream:
            line = hostfacts.first_line(raw.rstrip("\n")) if raw.strip() else ""
            if not line:
                continue
            self.tail.append(line[:500])
            if m := _TODO.match(line):
                self.total, self.already = int(m[2]), int(m[3])
            elif m := _RUNNING.match(line):
                self.current = m[3]
            elif _FINISHED.match(line):
                self.current = None
            self.changed = True

    def join(self) -> None:
        self._thread.join(timeout=5)


def _cancelled(worker: Any, key: Any) -> bool:
    """Whether the client cancelled this task (or the worker is closing): the sweep then stops."""
    ts = worker.state.tasks.get(key)
    return ts is None or ts.state in ("cancelled", "released", "forgotten") or worker.status.name != "running"


def run_host(job: dict[str, Any]) -> dict[str, Any]:
    """The task of one host: seed its folder from home, send home what home lacks, run ``cpubench run`` and send
    each record as it is filed. Returns how the child ended and the last lines of its output."""
    from distributed import get_worker
    from distributed.worker import thread_state

    worker = get_worker()
    host = job["host"]
    if worker.name != host:  # restrictions say this cannot happen; a wrong folder must not either
        raise RuntimeError(f"task for {host} reached worker {worker.name}")
    root = STAGING
    folder = store.host_dir(root, host)
    topic = job["topic"]

    def send(msg: dict[str, Any]) -> None:
        worker.log_event(topic, {"host": host, **msg})

    sent = set(job.get("home_keys", []))
    _seed(root, host, folder, job.get("home", []))
    _send_new(folder, sent, send, earlier=True)  # measured before, not yet home (a cut connection, a dead worker)
    config = root / FLEET_DIR / f"{host}-{job['token']}.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    hostfacts.atomic_write_text(config, job["config_text"])
    argv = [sys.executable, "-m", "cpubench", "run", "--config", str(config), "--out", str(root), "--host-id", host,
            "--progress", "plain", "--heartbeat", str(HEARTBEAT_S), *job.get("run_args", [])]  # fmt: skip
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            errors="replace", preexec_fn=_tie(os.getpid()))  # fmt: skip
    lines = _Lines(proc.stdout)
    host_stamp: tuple[int, int] | None = None
    key = thread_state.key
    stopped = False
    try:
        while True:
            done = proc.poll() is not None
            host_stamp = _send_host(folder, host_stamp, send)
            _send_new(folder, sent, send)
            if lines.changed:
                lines.changed = False
                send({"kind": "progress", "total": lines.total, "already": lines.already, "current": lines.current,
                      "line": lines.tail[-1] if lines.tail else None})  # fmt: skip
            if done:
                break
            if not stopped and _cancelled(worker, key):
                stopped = True
                proc.send_signal(signal.SIGTERM)  # the runner stops its engine; finished runs stay recorded
            time.sleep(POLL_S)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        lines.join()
    _send_new(folder, sent, send)
    return {"host": host, "rc": proc.returncode, "tail": list(lines.tail), "seconds": time.monotonic() - t0,
            "sent": len(sent), "stopped": stopped}  # fmt: skip


def _seed(root: Path, host: str, folder: Path, home: list[dict[str, Any]]) -> None:
    """Records home has and this host's folder lacks go into the folder first, so they are not measured again."""
    if not home:
        return
    mine = store_keys(folder)
    for d in home:
        try:
            rec = RunRecord.from_dict(d)
        except RecordError:
            continue
        if rec.host_id == host and record_key(rec) not in mine:
            store.append_run(root, rec)
            mine[record_key(rec)] = rec


def _send_host(folder: Path, stamp: tuple[int, int] | None, send: Any) -> tuple[int, int] | None:
    """host.json, each time the runner rewrites it."""
    try:
        st = os.stat(folder / store.HOST_FILE)
    except OSError:
        return stamp
    now = (st.st_mtime_ns, st.st_size)
    if now == stamp:
        return stamp
    try:
        send({"kind": "host", "host_json": json.dumps(store.read_host(folder).to_dict(), sort_keys=True, default=str)})
    except store.StoreError:
        return stamp
    return now


def _send_new(folder: Path, sent: set[str], send: Any, earlier: bool = False) -> None:
    """Every record of the folder not yet home, with its log."""
    for key, rec in store_keys(folder).items():
        if key in sent:
            continue
        try:
            line = store.record_line(rec)
        except RecordError:
            continue  # the store read it, so it writes it; a record it would refuse is not sent
        send({"kind": "record", "record_json": line, "log": _log_text(folder, rec.log), "earlier": earlier})
        sent.add(key)


def _log_text(folder: Path, log: str | None) -> str | None:
    parts = log_parts(log)
    if parts is None:
        return None
    with contextlib.suppress(OSError, store.StoreError):
        fd = store.open_regular(folder / store.LOGS_DIR / parts[0] / parts[1])
        with os.fdopen(fd, "rb") as f:
            return f.read(MAX_LOG_CHARS).decode("utf-8", "replace")
    return None
