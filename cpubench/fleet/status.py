"""What each host of a fleet is doing, kept on the scheduler so that ``cpubench fleet status`` can ask from anywhere.

Why on the scheduler (``Client.set_metadata`` under ``cpubench-fleet/hosts/<host>``): the scheduler is the one place
every fleet command reaches; a status file on the dispatching laptop could not be read from elsewhere and would say
"running" for ever after the laptop slept. The dispatcher rewrites a host's entry when something changes; the entry
stays after the run, so ``status`` also says how the last run of each host ended and why it failed. An entry left
"running" by a dispatcher that died is shown stopped: ``status`` asks whether any fleet run still holds the host's
lock (:func:`unheld`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from cpubench.render.escape import plain
from cpubench.sweep.progress import hms

META = "cpubench-fleet"


@dataclass
class HostState:
    """One host in one fleet run."""

    host: str
    address: str
    run: str  # the fleet run's token
    by: str  # who dispatched it (user@machine)
    state: str = "waiting"  # waiting, running, done, failed, stopped
    total: int | None = None  # runs the host's sweep had to do (from its runner)
    already: int = 0  # runs its folder already held
    done: int = 0  # runs measured and filed home during this fleet run
    earlier: int = 0  # runs measured before (by a fleet run cut short) that came home during this one
    not_ok: int = 0  # of those, failed or timed out
    current: str | None = None  # the run in flight, as its runner says it
    reason: str | None = None  # why the host failed
    started: float = field(default_factory=time.time)
    ended: float | None = None
    seconds: float = 0.0  # summed durations of the runs done (for the ETA)

    def eta(self) -> float | None:
        """Seconds left: the runs not yet home times the mean duration of those that came (None when that is not a
        finite number: durations come from other hosts' records)."""
        if self.state != "running" or self.total is None or not self.done:
            return None
        eta = max(0, self.total - self.done) * self.seconds / self.done
        return eta if math.isfinite(eta) else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HostState:
        """An entry as the scheduler holds it, each field of its own type or its default. Why not trusted as it is:
        anything that reaches the scheduler can write its metadata, and ``status`` and a busy host's refusal must
        still say one plain thing, not stop on a state that is a number or a start that is not a time."""
        known: dict[str, Any] = {}
        for name, (types, default) in _FIELDS.items():
            v = d.get(name, default)
            ok = isinstance(v, types) and not isinstance(v, bool) and (isinstance(v, str) or 0 <= v < MAX_NUMBER)
            known[name] = v if ok or v is None and default is None else default
        return cls(**known)


MAX_NUMBER = 1e11  # seconds (3,000 years) or runs: more than any entry holds, and within what time.localtime takes
_TEXT, _COUNT, _TIME = (str,), (int,), (int, float)
# Field -> (the types an entry may hold, what stands in for a wrong one); kept beside HostState, checked by a test.
_FIELDS: dict[str, tuple[tuple[type, ...], Any]] = {
    "host": (_TEXT, "?"), "address": (_TEXT, "?"), "run": (_TEXT, "?"), "by": (_TEXT, "?"), "state": (_TEXT, "?"),
    "total": (_COUNT, None), "already": (_COUNT, 0), "done": (_COUNT, 0), "earlier": (_COUNT, 0),
    "not_ok": (_COUNT, 0), "current": (_TEXT, None), "reason": (_TEXT, None), "started": (_TIME, 0.0),
    "ended": (_TIME, None), "seconds": (_TIME, 0.0),
}  # fmt: skip


ACTIVE = ("waiting", "running")


def unheld(states: dict[str, HostState], held: Callable[[str], bool]) -> dict[str, HostState]:
    """``states`` as ``status`` shows them: a host its entry says is waiting or running but no fleet run holds (its
    dispatcher died without writing its end) is shown stopped, with why and how to go on. ``held`` is asked only
    for those hosts. Only shown: the entry on the scheduler is the dispatcher's to write."""
    out = dict(states)
    for host, s in states.items():
        if s.state in ACTIVE and not held(host):
            why = (f"its dispatcher ({s.by}, fleet run {s.run}) ended without saying how; no fleet run holds the "
                   "host now: `cpubench fleet run` again resumes it")  # fmt: skip
            out[host] = replace(s, state="stopped", current=None, reason=why)
    return out


def progress_text(s: HostState) -> str:
    if s.total is None:
        return f"{s.done} home"
    return f"{s.done}/{s.total}" + (f" (+{s.already} before)" if s.already else "")


def table(states: dict[str, HostState], workers: dict[str, str]) -> list[str]:
    """The lines of ``cpubench fleet status``: one per host that has a worker or a fleet entry."""
    rows = [("host", "worker", "state", "progress", "ETA", "running / why")]
    for host in sorted(set(states) | set(workers)):
        s = states.get(host)
        worker = workers.get(host, "(no worker)")
        if s is None:
            rows.append((host, worker, "idle", "-", "-", ""))
            continue
        eta = s.eta()
        what = s.current or "" if s.state == "running" else (s.reason or "")
        state = s.state + (f" ({s.not_ok} not ok)" if s.not_ok else "")
        rows.append((host, worker, state, progress_text(s), hms(eta) if eta is not None else "-", what))
    rows = [tuple(plain(c) for c in r) for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
