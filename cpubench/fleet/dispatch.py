"""``cpubench fleet run``'s side: one task per host, each restricted to that host's worker; what comes back goes home.

Dask does the work that is a scheduler's: each host's task is restricted to its worker (``workers=[address]``,
``allow_other_workers=False``) and asks for the worker's one ``host`` resource, so a host never runs two benchmark
processes and never another host's runs; a worker that dies leaves the scheduler (its connection closes, or its
heartbeats stop), and the scheduler says so in a ``remove-worker`` event on the worker's topic. This module listens:

- records, logs and host records arrive as events on the run's topic (:meth:`Worker.log_event`,
  :meth:`Client.subscribe_topic`) and are filed by :class:`cpubench.fleet.home.Home` while the sweep goes on; the
  scheduler keeps the topic's events, so a last :meth:`Client.get_events` at the end files anything a handler missed;
- a host whose worker leaves is failed with the reason and its task cancelled, so it does not wait in ``no-worker``
  for ever (``distributed.scheduler.no-workers-timeout`` is null by default) nor rerun when the worker comes back
  mid-run; the other hosts go on. A task that errs (``KilledWorker``, a scheduler's own no-workers timeout) fails its
  host with the exception's line;
- two fleet runs at once on one host are refused: each host is held with a ``distributed.Lock`` (a lease the
  scheduler frees when this client dies), and who holds it is in the scheduler's metadata
  (:mod:`cpubench.fleet.status`), which ``cpubench fleet status`` reads.
"""

from __future__ import annotations

import fnmatch
import getpass
import json
import logging
import os
import queue
import socket
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from cpubench.fleet.connect import FleetError, parse_address
from cpubench.fleet.home import Home
from cpubench.fleet.job import Source, with_flags
from cpubench.fleet.status import META, HostState
from cpubench.fleet.worker import run_host
from cpubench.render.escape import plain
from cpubench.results import store
from tf_cnn_benchmarks.record import RunRecord

PUBLISH_S = 1.0  # how often the status on the scheduler is rewritten while something changes
PRESENCE_S = 2.0  # how often the worker list is checked, beside the scheduler's remove-worker events
CATCH_UP_S = 10.0  # after a host's task ends, how long to wait for its last events


def workers_by_host(client: Any) -> dict[str, str]:
    """Host id -> worker address, for the workers that offer a ``host`` resource (``cpubench fleet worker``)."""
    out: dict[str, str] = {}
    for addr, w in client.scheduler_info(n_workers=-1)["workers"].items():
        if (w.get("resources") or {}).get("host") and isinstance(w.get("name"), str):
            out[w["name"]] = addr
    return out


def lock_name(host: str) -> str:
    """The scheduler-side lock a fleet run holds on ``host`` for as long as it runs there."""
    return f"{META}-host-{host}"


def held(host: str) -> bool:
    """Whether a fleet run holds ``host`` now, asked through the default client (the one the command connected).
    The lock is a lease its dispatcher keeps renewing, so it is free again once the dispatcher is gone, however it
    ended (killed, its laptop asleep or off the network)."""
    from distributed import Lock

    return bool(Lock(lock_name(host)).locked())


def pick_hosts(available: dict[str, str], patterns: list[str]) -> dict[str, str]:
    """The hosts matching any ``--hosts`` glob (all when none), by id; FleetError when none match."""
    chosen = {
        h: a for h, a in sorted(available.items()) if not patterns or any(fnmatch.fnmatchcase(h, p) for p in patterns)
    }
    if not chosen:
        have = ", ".join(sorted(available)) or "none"
        raise FleetError(f"no fleet worker matches --hosts {' '.join(patterns) or '*'} (workers: {have})")
    for h in chosen:
        try:
            store.validate_host_id(h)
        except store.HostIdError as e:
            raise FleetError(f"worker name {plain(h)!r} cannot be a host folder: {e}") from None
    return chosen


def cluster_flags(hosts: dict[str, str], port: int) -> dict[str, dict[str, Any]]:
    """Per host, the engine flags of a multi-worker job over these hosts: task i listens on ``port + i`` of its host
    (so several hosts on one machine, as in the tests, do not collide)."""
    names = sorted(hosts)
    workers = ",".join(f"{_host_of(hosts[h])}:{port + i}" for i, h in enumerate(names))
    return {h: {"worker_hosts": workers, "task_index": i} for i, h in enumerate(names)}


def _host_of(address: str) -> str:
    _scheme, host, _port = parse_address(address)
    return f"[{host}]" if ":" in host else host


@dataclass
class Outcome:
    """How a fleet run ended, for the closing lines and the exit code."""

    states: dict[str, HostState]
    warnings: list[str] = field(default_factory=list)
    dispatch_s: float = 0.0  # from the start until every task was submitted
    wall_s: float = 0.0
    interrupted: bool = False
    lags: list[float] = field(default_factory=list)  # seconds from each run's end (its record) to its filing home

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(s.state == "done" and not s.not_ok for s in self.states.values())


class FleetRun:
    """One ``cpubench fleet run``: locks, tasks, the events that bring records home, the status on the scheduler."""

    def __init__(
        self,
        client: Any,
        out: Path,
        hosts: dict[str, str],
        texts: dict[str, str],
        run_args: list[str],
        say: Callable[[str], None],
    ) -> None:
        self.client = client
        self.out = out
        self.hosts = hosts
        self.texts = texts
        self.run_args = run_args
        self.say = say
        self.token = uuid.uuid4().hex[:12]
        self.topic = f"{META}-{self.token}"
        self.by = f"{getpass.getuser()}@{socket.gethostname()}"
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.states = {h: HostState(h, a, self.token, self.by) for h, a in hosts.items()}
        self.futures: dict[str, Any] = {}
        self.locks: list[Any] = []
        self.home = Home(out, set(hosts))
        self._dirty = True
        self._published = 0.0
        self.lags: list[float | None] = []  # per record measured in this run: seconds from its end to home

    # -- locks and status

    def lock(self) -> None:
        """Hold every host, or none: FleetError naming the fleet run that holds one."""
        from distributed import Lock

        for host in sorted(self.hosts):
            lk = Lock(lock_name(host))
            if not lk.acquire(blocking=False):
                self.unlock()
                raise FleetError(f"{host} is busy: {self._holder(host)}; wait for it (`cpubench fleet status`)")
            self.locks.append(lk)

    def _holder(self, host: str) -> str:
        d = self.client.get_metadata([META, "hosts", host], default=None)
        if not isinstance(d, dict):
            return "another fleet run holds it"
        s = HostState.from_dict(d)
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s.started))
        return f"fleet run {s.run} from {plain(s.by)} holds it since {since}"

    def unlock(self) -> None:
        for lk in self.locks:
            try:
                lk.release()
            except (RuntimeError, ValueError, OSError):  # an expired lease: the scheduler freed it already
                pass
        self.locks = []

    def publish(self, force: bool = False) -> None:
        now = time.monotonic()
        if not (force or (self._dirty and now - self._published >= PUBLISH_S)):
            return
        for host, s in self.states.items():
            self.client.set_metadata([META, "hosts", host], s.to_dict())
        self._dirty = False
        self._published = now

    # -- the run

    def run(self, home_seed: bool = True) -> Outcome:
        t0 = time.monotonic()
        outcome = Outcome(self.states)
        self.client.subscribe_topic(self.topic, lambda ev: self.events.put(("event", ev[1])))
        for host, addr in self.hosts.items():
            self.client.subscribe_topic(addr, lambda ev, host=host: self.events.put(("worker", (host, ev[1]))))
        for host in sorted(self.hosts):
            job = {
                "host": host,
                "token": self.token,
                "topic": self.topic,
                "config_text": self.texts[host],
                "run_args": self.run_args,
                "home": self.home.records(host) if home_seed else [],
                "home_keys": sorted(self.home.keys[host]),
            }
            self.futures[host] = self.client.submit(
                run_host, job, key=f"{META}-{host}-{self.token}", workers=[self.hosts[host]],
                allow_other_workers=False, resources={"host": 1}, pure=False, retries=0,
            )  # fmt: skip
            self.states[host].state = "running"
        outcome.dispatch_s = time.monotonic() - t0
        self.publish(force=True)
        lost = False
        try:
            self._loop()
        except KeyboardInterrupt:
            outcome.interrupted = True
            for host, fut in self.futures.items():
                if not fut.done():
                    fut.cancel()
                    self._fail(host, "stopped: the fleet run was interrupted (finished runs are kept)")
        except (_SchedulerLost, OSError, TimeoutError, RuntimeError):
            if self._connected():
                raise
            lost = True
        finally:
            # Without a scheduler there is nothing to catch up, publish, unsubscribe or unlock (its locks went
            # with it), and each try would wait for a connection that will not come.
            if not lost:
                self._catch_up()
                self.publish(force=True)
                for topic in (self.topic, *self.hosts.values()):
                    try:
                        self.client.unsubscribe_topic(topic)
                    except (KeyError, ValueError):
                        pass
                self.unlock()
        if lost:
            # The client's own log of its reconnect, cancelled when the command closes it, is tracebacks that say
            # nothing this line does not: the process ends here, so its logging ends too.
            logging.disable(logging.CRITICAL)
            home = sum(self.home.received.values())
            raise FleetError(
                f"lost the scheduler mid-run (its process stopped or its network went); the {home} run(s) that came "
                f"home are kept in {self.out}: start the scheduler and the workers again and rerun `cpubench fleet "
                "run`: each host resumes and sends home what it finished since"
            )
        outcome.warnings = self.home.warnings
        outcome.lags = sorted(x for x in self.lags if x is not None)
        outcome.wall_s = time.monotonic() - t0
        return outcome

    def _loop(self) -> None:
        last_presence = time.monotonic()
        ended: dict[str, float] = {}
        while True:
            self._drain(timeout=0.2)
            if not self._connected():  # before reading the futures: losing the scheduler cancels every one
                raise _SchedulerLost
            for host, fut in self.futures.items():
                s = self.states[host]
                if host in ended or not fut.done():
                    continue
                ended[host] = time.monotonic()
                if s.state == "running":
                    self._finish(host, fut)
            if time.monotonic() - last_presence >= PRESENCE_S:
                last_presence = time.monotonic()
                self._check_presence()
            self.publish()
            if len(ended) == len(self.futures) and all(
                self.states[h].state != "done" or self._home_complete(h) or time.monotonic() - t > CATCH_UP_S
                for h, t in ended.items()
            ):
                return

    def _connected(self) -> bool:
        """Whether the client still has its scheduler. When it loses it, the client says "connecting" (or, past its
        timeout, "closed") before it cancels every task, so a cancelled task is read after this is asked."""
        return self.client.status == "running"

    def _home_complete(self, host: str) -> bool:
        """Whether every record the host's task says it sent has been filed (its events can trail its result)."""
        fut = self.futures[host]
        res = _task_result(fut.result()) if fut.status == "finished" else None
        return len(self.home.keys[host]) >= (res["sent"] if res is not None else 0)

    def _drain(self, timeout: float) -> None:
        try:
            kind, payload = self.events.get(timeout=timeout)
        except queue.Empty:
            return
        while True:
            if kind == "event":
                self._event(payload)
            else:
                self._worker_event(*payload)
            try:
                kind, payload = self.events.get_nowait()
            except queue.Empty:
                return

    def _event(self, msg: Any) -> None:
        if not isinstance(msg, dict) or not isinstance(msg.get("host"), str) or msg["host"] not in self.states:
            return
        host = msg["host"]
        if msg.get("worker") != self.hosts[host]:  # the scheduler stamps the sender: no one speaks for another host
            self.say(f"cpubench fleet: warning: a message for {host} from {plain(msg.get('worker'))}; dropped")
            return
        s = self.states[host]
        kind = msg.get("kind")
        if kind == "progress":
            total, already = _count(msg.get("total")), _count(msg.get("already") or 0)
            if total is not None and already is not None:  # a count, or nothing: a worker's word is data
                s.total, s.already = total, already
            cur = msg.get("current")
            s.current = plain(cur)[:200] if isinstance(cur, str) else None
            self._dirty = True
            return
        before = self.home.received[host]
        warning = self.home.receive(host, msg)
        if warning:
            self.say(f"cpubench fleet: warning: {plain(warning)}")
        if kind == "record" and self.home.received[host] > before:
            rec = RunRecord.from_dict(json.loads(msg["record_json"]))
            if msg.get("earlier"):
                s.earlier += 1
                self.say(f"{host}: {_describe(rec)} (measured before, now home)")
                return
            s.done += 1
            s.seconds += float(rec.duration or 0.0)
            self.lags.append(_lag(rec))
            s.not_ok += rec.status in ("failed", "timeout")
            self._dirty = True
            self.say(f"{host}: {_describe(rec)} ({s.done}/{s.total if s.total is not None else '?'})")

    def _worker_event(self, host: str, msg: Any) -> None:
        """The scheduler's word that a host's worker left: the host fails with the reason; its task is cancelled."""
        if not isinstance(msg, dict) or msg.get("action") != "remove-worker":
            return
        if "worker" in msg:  # the scheduler stamps what a worker logs on another's topic: not the scheduler's word
            self.say(f"cpubench fleet: warning: a worker ({plain(msg['worker'])[:80]}) said {host}'s worker left; "
                     "ignored")  # fmt: skip
            return
        if self.states[host].state != "running":
            return
        stim = str(msg.get("stimulus_id") or "")
        if msg.get("expected"):
            why = "its worker was stopped"
        elif stim.startswith("handle-worker-cleanup"):
            why = "its worker's connection closed (the worker process died or its network went)"
        elif "ttl" in stim or "heartbeat" in stim:
            why = "its worker stopped answering heartbeats"
        else:
            why = f"its worker left the scheduler ({stim.rsplit('-', 1)[0] or 'no reason given'})"
        self._fail(host, f"{why} while running; the runs it finished are home, rerun to finish the rest")
        self.futures[host].cancel()

    def _check_presence(self) -> None:
        try:
            present = set(workers_by_host(self.client).values())
        except (OSError, TimeoutError):
            return
        for host, addr in self.hosts.items():
            if self.states[host].state == "running" and addr not in present:
                self._fail(host, "its worker left the scheduler while running; rerun to finish the rest")
                self.futures[host].cancel()

    def _fail(self, host: str, reason: str) -> None:
        s = self.states[host]
        if s.state in ("failed", "done"):
            return
        s.state, s.reason, s.current, s.ended = "failed", reason, None, time.time()
        self._dirty = True
        self.say(f"{host}: FAILED: {reason}")

    def _finish(self, host: str, fut: Any) -> None:
        s = self.states[host]
        if fut.status == "cancelled":
            if not self._connected():  # the client cancels every task when it loses the scheduler: not this host's
                raise _SchedulerLost
            self._fail(host, "its task was cancelled")
            return
        exc = fut.exception() if fut.status == "error" else None
        if exc is not None:
            self._fail(host, f"{type(exc).__name__}: {plain(exc)[:300]}")
            return
        res = _task_result(fut.result())
        if res is None:  # not what run_host returns: a worker that is not cpubench's, or a broken one
            self._fail(host, "its worker returned something that is not a cpubench fleet result; check the "
                             "cpubench version on that host (`cpubench fleet worker`)")  # fmt: skip
            return
        rc = res["rc"]
        tail = [plain(x) for x in res["tail"]]
        if rc in (0, 1):
            s.state, s.current, s.ended = "done", None, time.time()
            self._dirty = True
            left = f", {s.not_ok} not ok" if s.not_ok else ""
            self.say(f"{host}: done: {s.done} runs home{left} (+{s.already} before) in {res['seconds']:.1f} s")
            return
        errors = [x for x in tail if "error" in x.lower()] or tail
        why = errors[-1] if errors else f"exit code {rc}"
        self._fail(host, f"cpubench run exited {rc}: {why[:300]}")

    def _catch_up(self) -> None:
        """Every event the scheduler kept for this run, filed again (a re-send is harmless)."""
        try:
            events = self.client.get_events(self.topic)
        except (OSError, TimeoutError):
            return
        self._drain(timeout=0)
        for _ts, msg in events:
            self._event(msg)


class _SchedulerLost(Exception):
    """The client lost the scheduler mid-run: :meth:`FleetRun.run` ends with one line (FleetError) saying so."""


MAX_COUNT = 10**9  # more runs than any plan holds (cpubench.spec.plan.MAX_RUNS is 100,000)


def _count(value: object) -> int | None:
    """A count of runs from a worker's message: a non-negative int below :data:`MAX_COUNT`, else None."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_COUNT:
        return value
    return None


def _task_result(res: object) -> dict[str, Any] | None:
    """A host task's result (:func:`cpubench.fleet.worker.run_host`) with the types this side reads, or None when it
    is anything else: the result comes from another machine, and a wrong type must fail that host in one line, not
    stop the whole fleet run with a traceback."""
    if not isinstance(res, dict):
        return None
    rc, tail, seconds, sent = res.get("rc"), res.get("tail") or [], res.get("seconds", 0.0), res.get("sent", 0)
    if not isinstance(rc, int) or isinstance(rc, bool) or _count(sent) is None:
        return None
    if not isinstance(tail, list) or not all(isinstance(x, str) for x in tail):
        return None
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not 0 <= seconds < 1e12:
        return None
    return {"rc": rc, "tail": [x[:500] for x in tail[-40:]], "seconds": float(seconds), "sent": sent}


def _lag(rec: RunRecord) -> float | None:
    """Seconds from a run's end (its start plus its duration, by the host's clock) to its record being filed here:
    what streaming home costs (clocks of other hosts may disagree by their skew)."""
    try:
        start = datetime.fromisoformat(str(rec.started)).timestamp()
    except ValueError:
        return None
    return time.time() - start - float(rec.duration or 0.0)


def _describe(rec: RunRecord) -> str:
    what = f"{rec.setting} {rec.model} bs{rec.batch_size} r{rec.repeat}"
    if rec.status == "ok":
        return plain(f"{what}: ok {rec.images_per_sec:.2f} img/s")
    return plain(f"{what}: {rec.status.upper()} ({rec.reason})")[:300]


def format_outcome(o: Outcome, out: Path, stream: TextIO = sys.stdout) -> None:
    """The closing lines: per host how it ended, then the totals and what the fleet added."""
    for host, s in sorted(o.states.items()):
        if s.state == "done":
            line = f"{host}: done, {s.done} runs home" + (f", {s.not_ok} not ok" if s.not_ok else "")
        else:
            line = f"{host}: {s.state.upper()}: {s.reason}" + (f" ({s.done} runs home)" if s.done else "")
        print(plain(line), file=stream)
    n = sum(s.done for s in o.states.values())
    failed = sum(s.state != "done" for s in o.states.values())
    print(
        f"cpubench fleet: {len(o.states)} host(s), {n} runs home, {failed} host(s) failed in {o.wall_s:.1f} s "
        f"(dispatch {o.dispatch_s:.2f} s) -> {out}",
        file=stream,
    )
    if o.lags:
        mid = o.lags[len(o.lags) // 2]
        print(f"cpubench fleet: each run's record was home {mid:.2f} s after the run ended (median; max "
              f"{o.lags[-1]:.2f} s)", file=stream)  # fmt: skip
    if o.warnings:
        print(f"cpubench fleet: {len(o.warnings)} message(s) refused (see above)", file=stream)


def ensure_out(out: Path) -> None:
    """``--out`` must be a folder this user can write (it is created if missing)."""
    try:
        store.check_writable(out)
        os.makedirs(out, exist_ok=True)
    except (store.StoreError, OSError) as e:
        raise FleetError(str(e)) from None


def texts_for(source: Source, hosts: dict[str, str], workers: int | None, port: int) -> dict[str, str]:
    """Each host's config text: the config as written, or with its place in a multi-worker cluster."""
    if not workers:
        return {h: source.text for h in hosts}
    return {h: with_flags(source, f) for h, f in cluster_flags(hosts, port).items()}
