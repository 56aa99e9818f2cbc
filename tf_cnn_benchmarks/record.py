"""The run record: one typed description of one benchmark run, from the engine's result JSON to ``runs.jsonl``.

Why one type for everyone: the engine writes it (``--result_json``), the runner completes it (host, setting, repeat,
hash, log, load), the store keeps it, ``import-logs`` makes it from old logs, and the report, the pages and ``bench/``
read it. When each of them shaped its own dict, facts got lost between them (threads, devices, versions) and
statistics were computed in several slightly different ways. Here the raw samples are kept and every statistic is
derived from them on demand, in one place.

A record is a **spec** (what was measured: host, framework and version, engine identity, model, batch, every sweep
axis value in ``params``, effective threads, the CPUs and memory policy the child ran under, the thread environment
it saw) plus a **measurement** (:class:`Samples`: warm-up and timed step times, and phase ``timings``) and an
**outcome** (status, reason, exit code or signal).

On disk a record is one flat JSON object (``to_dict``); derived statistics (``latency_ms``, ``cv``) are written too,
for people and tools reading the file, and recomputed from the samples when read. :meth:`RunRecord.from_dict` reads
every schema written so far (schema 1: cpubench 0.1) and refuses, with the fix, what it cannot trust.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from tf_cnn_benchmarks.hostfacts import finite

RECORD_SCHEMA = 2
STATUSES = ("ok", "failed", "timeout", "skipped")
SOURCES = ("run", "import", "engine")


# Images/sec above this is no measurement (the tiniest model on the largest host is orders of magnitude below): a
# damaged or hand-made figure, refused where records are read, before the readers' sums, ratios and plots overflow.
MAX_IMAGES_PER_SEC = 1e9


class RecordError(ValueError):
    """A record that cannot be read as a run: the message says which field is wrong (and the fix, when known)."""


# ----------------------------------------------------------------------------------------------------- statistics


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks (numpy's default method)."""
    n = len(sorted_values)
    if n == 1:
        return float(sorted_values[0])
    pos = (n - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo))


@dataclass(frozen=True)
class Latency:
    """Per-batch latency of the timed steps, in milliseconds."""

    mean: float
    min: float
    max: float
    p50: float
    p90: float
    p99: float
    iqr: float  # p75 - p25

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency | None:
        if not seconds:
            return None
        ms = sorted(1000.0 * s for s in seconds)
        return cls(
            mean=statistics.fmean(ms),
            min=ms[0],
            max=ms[-1],
            p50=percentile(ms, 50),
            p90=percentile(ms, 90),
            p99=percentile(ms, 99),
            iqr=percentile(ms, 75) - percentile(ms, 25),
        )

    def to_dict(self, digits: int = 4) -> dict[str, float]:
        return {f.name: round(getattr(self, f.name), digits) for f in fields(self)}


@dataclass(frozen=True)
class Spread:
    """Median and range of repeated figures (repeats of a run, runs of a benchmark): how figures are quoted here."""

    median: float
    min: float
    max: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread | None:
        xs = [float(v) for v in values]
        if not xs:
            return None
        return cls(statistics.median(xs), min(xs), max(xs), len(xs))

    def text(self, fmt: str = ".2f", unit: str = "") -> str:
        """``12.34 [11.90-12.80]`` (median [min-max])."""
        return f"{self.median:{fmt}}{unit} [{self.min:{fmt}}-{self.max:{fmt}}]"


@dataclass(frozen=True)
class Drift:
    """Whether the timed steps got faster or slower during the run: the median of the second half against the
    first, compared with the spread within the halves (the mean of their IQRs) and with a 5% floor. A run still
    warming up, or one that something else started to share the CPU with halfway, drifts; steady noise does not
    (each half spreads as much as the medians differ)."""

    first_ms: float
    second_ms: float
    spread_ms: float

    @property
    def change_pct(self) -> float:
        return 100.0 * (self.second_ms - self.first_ms) / self.first_ms if self.first_ms > 0 else 0.0

    @property
    def drifted(self) -> bool:
        """Beyond the spread within the halves, and by more than 5% (less is not worth a flag)."""
        return abs(self.second_ms - self.first_ms) > max(self.spread_ms, DRIFT_MIN_CHANGE * self.first_ms)

    def to_dict(self) -> dict[str, Any]:
        return {"first_ms": round(self.first_ms, 4), "second_ms": round(self.second_ms, 4),
                "spread_ms": round(self.spread_ms, 4), "change_pct": round(self.change_pct, 2),
                "drifted": self.drifted}  # fmt: skip


DRIFT_MIN_STEPS = 10  # fewer timed steps (5 a half) say nothing about drift
DRIFT_MIN_CHANGE = 0.05  # a smaller change between the halves is not flagged, whatever the spread


@dataclass(frozen=True)
class Samples:
    """What the timing loop measured: seconds of each warm-up and each timed step, for a global batch of images.

    ``windows`` gives, for each timed step, the measured window it belongs to (a run may time several windows in
    one process); empty means one window.
    """

    global_batch: int | None = None
    step_times: tuple[float, ...] = ()
    warmup_times: tuple[float, ...] = ()
    windows: tuple[int, ...] = ()

    @property
    def num_windows(self) -> int:
        return len(set(self.windows)) if self.windows else (1 if self.step_times else 0)

    def window_rates(self) -> list[float]:
        """Images/sec of each measured window, in window order."""
        if not self.global_batch or not self.step_times:
            return []
        index = self.windows or (0,) * len(self.step_times)
        by: dict[int, list[float]] = {}
        for w, t in zip(index, self.step_times, strict=True):
            by.setdefault(w, []).append(t)
        return [self.global_batch * len(ts) / sum(ts) for _, ts in sorted(by.items()) if sum(ts) > 0]

    @property
    def drift(self) -> Drift | None:
        n = len(self.step_times)
        if n < DRIFT_MIN_STEPS:
            return None
        first, second = self.step_times[: n // 2], self.step_times[n - n // 2 :]
        a, b = Latency.of(first), Latency.of(second)
        assert a is not None and b is not None
        return Drift(a.p50, b.p50, (a.iqr + b.iqr) / 2)

    @property
    def images_per_sec(self) -> float | None:
        """Images over the timed steps divided by their total time (upstream's ``total images/sec``)."""
        total = sum(self.step_times)
        if not self.global_batch or not self.step_times or total <= 0:
            return None
        return self.global_batch * len(self.step_times) / total

    @property
    def latency_ms(self) -> Latency | None:
        return Latency.of(self.step_times)

    @property
    def cv(self) -> float | None:
        """Coefficient of variation of the step times (sample standard deviation / mean)."""
        if len(self.step_times) < 2:
            return None
        mean = statistics.fmean(self.step_times)
        return statistics.stdev(self.step_times) / mean if mean > 0 else None


# ----------------------------------------------------------------------------------------------------- the record

# A name that may become part of a file name (models, settings): letters, digits and ``._+-``, not starting with a dot
# or a dash, no ``..``. Text from data is data, never a path.
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")


def is_plain_name(text: object) -> bool:
    return isinstance(text, str) and bool(PLAIN_NAME.fullmatch(text)) and ".." not in text


@dataclass
class RunRecord:
    """One run. Fields the engine cannot know (host, setting, repeat, hash, log, load) stay None in its result JSON."""

    # Outcome
    status: str = "failed"
    reason: str | None = None
    images_per_sec: float | None = None
    # Spec: what was measured
    model: str | None = None
    batch_size: int | None = None  # per device
    num_devices: int | None = None
    params: dict[str, Any] = field(default_factory=dict)  # every sweep axis value (cpubench.spec.axes)
    framework: str = "tensorflow"
    framework_version: str | None = None
    engine: dict[str, Any] = field(default_factory=dict)  # {"name", "version", "command"}
    threads: dict[str, Any] = field(default_factory=dict)  # {"intra", "inter", "intra_effective", ...}
    cpus: list[int] | None = None  # the CPUs the engine could run on, as it saw them
    memory_policy: dict[str, Any] | None = None  # as the engine saw it (hostfacts.memory_policy)
    thread_env: dict[str, str] | None = None  # the thread-related environment the engine saw
    env_removed: list[str] = field(default_factory=list)  # inherited thread variables the runner kept from it
    env: dict[str, str] = field(default_factory=dict)  # the config's env:
    data_generated: bool | None = None
    onednn: bool | None = None
    devices: list[str] = field(default_factory=list)
    # Measurement
    samples: Samples = field(default_factory=Samples)
    timings: dict[str, float] | None = None  # wall seconds per phase: import, setup, build, warmup, measured
    # What else ran during the measured window (hostfacts.Noise.to_dict): foreign CPU seconds and share, frequency
    noise: dict[str, Any] | None = None
    window: dict[str, float] | None = None  # {"start", "end"}: the timed steps' wall-clock window (epoch seconds)
    # The run in its sweep
    host_id: str | None = None
    setting: str | None = None
    config_name: str | None = None
    run_hash: str | None = None
    repeat: int | None = None
    started: str | None = None  # ISO 8601 UTC
    duration: float | None = None  # wall seconds of the whole process
    load_avg_before: list[float] | None = None
    load_avg_after: list[float] | None = None
    log: str | None = None  # path of the log under the host folder
    command: list[str] | None = None
    exit_code: int | None = None
    signal: str | None = None
    source: str = "run"  # "run" (cpubench run), "import" (a legacy log), "engine" (a bare result JSON)
    # How the run was measured: declared, so readers need not dig in ``details`` (records written before these
    # existed kept them there; :func:`_lift_details` moves them here when such a record is read).
    launch: dict[str, Any] | None = None  # {"cpus", "membind"} the child was started with (pinned runs)
    recovered_from: str | None = None  # the kept result JSON a run measured but not recorded was recorded from
    quiet_wait: dict[str, Any] | None = None  # {"waited_s", "busy_pct", "gave_up"}: the wait for a quiet machine
    lock_forced: str | None = None  # measured while another benchmark held the machine (--force), and which
    group: dict[str, Any] | None = None  # {"batch_sizes", "trace"}: one process measured these batch sizes
    ensemble: dict[str, Any] | None = None  # {"id", "instances"}: groups started together, each on its own CPUs
    instance: int | None = None  # this run's group's index in its ensemble
    # The CPU packages' energy over the timed steps (RAPL): {"joules", "zones", "window_s"} or {"joules": null, "na"}
    energy: dict[str, Any] | None = None
    # The memory allocator the engine found mapped in its own process (hostfacts.allocator_loaded): {"name", ...}
    allocator: dict[str, Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)  # engine extras (flags, losses) or import provenance
    schema: int = RECORD_SCHEMA

    # -- derived

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def step_times(self) -> tuple[float, ...]:
        return self.samples.step_times

    @property
    def latency_ms(self) -> Latency | None:
        return self.samples.latency_ms

    @property
    def engine_version(self) -> str | None:
        v = self.engine.get("version")
        return None if v is None else str(v)

    def inconsistency(self) -> str | None:
        """Why this record's stated figure cannot be what its own step times say, or None.

        An ok record of schema 2 or later states images/sec as the global batch times its timed steps over their
        total time: a figure more than 0.5% away from that (rounding is far less) was edited or forged. Imported
        legacy logs (upstream's total, not our steps) and schema-1 records (taken as reported) are not checked."""
        if self.status != "ok" or self.schema < 2 or self.source == "import" or self.images_per_sec is None:
            return None
        derived = self.samples.images_per_sec  # 0.0 when the steps add up to more than a float holds
        if derived is None:
            return None
        if abs(self.images_per_sec - derived) > 0.005 * derived + 0.01:
            return (f"images_per_sec: {self.images_per_sec:g} disagrees with its own step times "
                    f"({derived:.4g} images/sec)")  # fmt: skip
        return None

    def with_samples(self, samples: Samples) -> RunRecord:
        """This record, measured: ok with the images/sec the samples give."""
        return replace(self, samples=samples, status="ok", reason=None, images_per_sec=samples.images_per_sec)

    # -- on disk

    def to_dict(self) -> dict[str, Any]:
        """The flat JSON object of ``runs.jsonl`` and the result JSON (derived statistics included, for readers)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "samples":
                continue
            value = getattr(self, f.name)
            out[f.name] = dict(value) if isinstance(value, dict) else list(value) if isinstance(value, list) else value
        s = self.samples
        out["global_batch_size"] = s.global_batch
        out["step_times"] = list(s.step_times)
        out["warmup_times"] = list(s.warmup_times)
        out["windows"] = list(s.windows)
        drift = s.drift
        out["drift"] = drift.to_dict() if drift else None
        lat = s.latency_ms
        out["latency_ms"] = lat.to_dict() if lat else None
        out["cv"] = None if s.cv is None else round(s.cv, 6)
        return finite(out)

    @classmethod
    def from_dict(cls, d: Any) -> RunRecord:
        """Read a record of any known schema; raise :class:`RecordError` naming the first bad field."""
        if not isinstance(d, dict):
            raise RecordError(f"not a JSON object but {type(d).__name__}")
        schema = d.get("schema", 1)
        if isinstance(schema, bool) or not isinstance(schema, int):
            raise RecordError(f"schema: expected an integer, got {schema!r}")
        if schema > RECORD_SCHEMA:
            raise RecordError(
                f"written by a newer cpubench (record schema {schema}, this one reads up to {RECORD_SCHEMA}): upgrade"
            )
        if schema < 1:
            raise RecordError(f"schema: unknown record schema {schema}")
        d = _upgrade_v1(d) if schema == 1 else _lift_details(d)
        return _Reader(d).record()


def _upgrade_v1(d: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 (cpubench 0.1) to today's keys: the hash was ``config_hash``, the engine only a version, the TF
    version sat beside it, ``data_generated`` among the params; ``images_per_sec`` was taken as reported."""
    out = dict(d)
    out["run_hash"] = d.get("config_hash")
    out["engine"] = {"version": d["engine_version"]} if d.get("engine_version") is not None else {}
    out["framework_version"] = d.get("tf_version")
    params = dict(d.get("params") or {})
    out["data_generated"] = params.pop("data_generated", None)
    out["params"] = params
    details = {k: d[k] for k in ("source_file", "legacy_iteration") if k in d}
    out["details"] = details
    bs, n = d.get("batch_size"), d.get("num_devices")
    if "global_batch_size" not in d and isinstance(bs, int) and isinstance(n, int):
        out["global_batch_size"] = bs * n
    out["schema"] = 1
    return out


# details key (records before the declared fields) -> the field it became
_LIFTED = {"launch": "launch", "wait_quiet": "quiet_wait", "lock_forced": "lock_forced"}


def _lift_details(d: dict[str, Any]) -> dict[str, Any]:
    """Schema-2 records written before the declared fields kept them in ``details`` (``launch``, ``recovered``,
    ``wait_quiet``, ``lock_forced``, ``process``/``batch_sizes``/``trace``): move them to their fields."""
    details = d.get("details")
    if not isinstance(details, dict) or not any(
        k in details for k in (*_LIFTED, "recovered", "process", "batch_sizes", "trace")
    ):
        return d
    out, rest = dict(d), dict(details)
    for old, new in _LIFTED.items():
        if old in rest and out.get(new) is None:
            out[new] = rest.pop(old)
    recovered = rest.pop("recovered", None)
    if isinstance(recovered, str) and out.get("recovered_from") is None:
        out["recovered_from"] = recovered.removeprefix("recorded from ").split(",", 1)[0]
    process = rest.pop("process", None)
    sizes = process.get("batch_sizes") if isinstance(process, dict) else None
    sizes = sizes if sizes is not None else rest.pop("batch_sizes", None)
    rest.pop("batch_sizes", None)
    trace = rest.pop("trace", None)
    if out.get("group") is None and sizes is not None:
        out["group"] = {"batch_sizes": sizes, **({"trace": trace} if trace is not None else {})}
    out["details"] = rest
    return out


class _Reader:
    """Field-by-field checks of a record's known fields: types, ranges and status values."""

    def __init__(self, d: dict[str, Any]) -> None:
        self.d = d

    def fail(self, key: str, what: str) -> RecordError:
        return RecordError(f"{key}: {what}, got {self.d.get(key)!r}")

    def opt(self, key: str, kind: type | tuple[type, ...], minimum: float | None = None) -> Any:
        v = self.d.get(key)
        if v is None:
            return None
        if isinstance(v, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise self.fail(key, f"expected {_kind_name(kind)}")
        if not isinstance(v, kind):
            raise self.fail(key, f"expected {_kind_name(kind)}")
        if isinstance(v, float) and not math.isfinite(v):
            raise self.fail(key, "expected a finite number")
        if minimum is not None and v < minimum:
            raise self.fail(key, f"must be at least {minimum:g}")
        return v

    def mapping(self, key: str) -> dict[str, Any]:
        v = self.d.get(key)
        if v is None:
            return {}
        if not isinstance(v, dict):
            raise self.fail(key, "expected an object")
        return dict(v)

    def window(self) -> dict[str, float] | None:
        w = self.opt_mapping("window")
        if w is None:
            return None
        if set(w) != {"start", "end"} or not all(_number(v) for v in w.values()) or w["end"] < w["start"]:
            raise self.fail("window", "expected {start, end} in seconds, end after start")
        return {"start": float(w["start"]), "end": float(w["end"])}

    def energy(self) -> dict[str, Any] | None:
        e = self.opt_mapping("energy")
        if e is not None and e.get("joules") is not None and not (_number(e["joules"]) and e["joules"] >= 0):
            raise self.fail("energy", "expected joules >= 0 or null")
        return e

    def opt_mapping(self, key: str) -> dict[str, Any] | None:
        return None if self.d.get(key) is None else self.mapping(key)

    def times(self, key: str) -> tuple[float, ...]:
        v = self.d.get(key)
        if v is None:
            return ()
        if not isinstance(v, list):
            raise self.fail(key, "expected a list of seconds")
        for x in v:
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or x < 0:
                raise RecordError(f"{key}: expected seconds (finite numbers >= 0), found {x!r}")
        return tuple(float(x) for x in v)

    def record(self) -> RunRecord:
        d = self.d
        status = d.get("status")
        if status not in STATUSES:
            raise self.fail("status", f"expected one of {', '.join(STATUSES)}")
        ips = self.opt("images_per_sec", (int, float))
        if status == "ok" and (ips is None or ips <= 0):
            raise self.fail("images_per_sec", "an ok run needs images/sec > 0")
        if status == "ok" and ips > MAX_IMAGES_PER_SEC:
            raise self.fail("images_per_sec", f"more than any host measures (at most {MAX_IMAGES_PER_SEC:g}): a "
                                              "damaged figure")  # fmt: skip
        if status != "ok" and ips is not None:
            raise self.fail("images_per_sec", f"a {status} run has no images/sec")
        reason = d.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise self.fail("reason", "expected text")
        model = d.get("model")
        if model is not None and not is_plain_name(model):
            raise self.fail("model", "expected a model name (letters, digits, '.', '_', '+', '-')")
        for key in ("host_id", "setting", "config_name", "run_hash", "started", "log", "signal", "framework_version"):
            if d.get(key) is not None and not isinstance(d[key], str):
                raise self.fail(key, "expected text")
        source = d.get("source", "run")
        if source not in SOURCES:
            raise self.fail("source", f"expected one of {', '.join(SOURCES)}")
        load = d.get("load_avg_before")
        if load is not None and not (isinstance(load, list) and all(_number(x) for x in load)):
            raise self.fail("load_avg_before", "expected a list of numbers")
        load_after = d.get("load_avg_after")
        if load_after is not None and not (isinstance(load_after, list) and all(_number(x) for x in load_after)):
            raise self.fail("load_avg_after", "expected a list of numbers")
        command = d.get("command")
        if command is not None and not (isinstance(command, list) and all(isinstance(x, str) for x in command)):
            raise self.fail("command", "expected a list of strings")
        timings = self.mapping("timings") if d.get("timings") is not None else None
        if timings is not None and not all(_number(v) for v in timings.values()):
            raise self.fail("timings", "expected seconds per phase")
        cpus = d.get("cpus")
        if cpus is not None and not (isinstance(cpus, list) and all(_int(c) and c >= 0 for c in cpus)):
            raise self.fail("cpus", "expected a list of CPU numbers")
        step_times = self.times("step_times")
        windows = d.get("windows") or []
        if not (isinstance(windows, list) and all(_int(w) and w >= 0 for w in windows)) or (
            windows and len(windows) != len(step_times)
        ):
            raise self.fail("windows", "expected a window number (>= 0) for each timed step")
        samples = Samples(
            global_batch=self.opt("global_batch_size", int, 1),
            step_times=step_times,
            warmup_times=self.times("warmup_times"),
            windows=tuple(windows),
        )
        noise = self.mapping("noise") if d.get("noise") is not None else None
        if noise is not None and noise.get("foreign_cpu_pct") is not None and not _number(noise["foreign_cpu_pct"]):
            raise self.fail("noise", "foreign_cpu_pct must be a number")
        return RunRecord(
            status=status,
            reason=reason,
            images_per_sec=None if ips is None else float(ips),
            model=model,
            batch_size=self.opt("batch_size", int, 1),
            num_devices=self.opt("num_devices", int, 1),
            params=self.mapping("params"),
            framework=str(d.get("framework") or "tensorflow"),
            framework_version=d.get("framework_version"),
            engine=self.mapping("engine"),
            threads=self.mapping("threads"),
            cpus=None if cpus is None else list(cpus),
            memory_policy=self.mapping("memory_policy") if d.get("memory_policy") is not None else None,
            thread_env=self.mapping("thread_env") if d.get("thread_env") is not None else None,
            env_removed=[str(x) for x in d.get("env_removed") or []],
            env={str(k): str(v) for k, v in self.mapping("env").items()},
            data_generated=d.get("data_generated") if isinstance(d.get("data_generated"), bool) else None,
            onednn=d.get("onednn") if isinstance(d.get("onednn"), bool) else None,
            devices=[str(x) for x in d.get("devices") or []],
            samples=samples,
            timings=timings,
            noise=noise,
            window=self.window(),
            host_id=d.get("host_id"),
            setting=d.get("setting"),
            config_name=d.get("config_name"),
            run_hash=d.get("run_hash"),
            repeat=self.opt("repeat", int, 0),
            started=d.get("started"),
            duration=self.opt("duration", (int, float), 0),
            load_avg_before=None if load is None else [float(x) for x in load],
            load_avg_after=None if load_after is None else [float(x) for x in load_after],
            log=d.get("log"),
            command=None if command is None else list(command),
            exit_code=self.opt("exit_code", int),
            signal=d.get("signal"),
            source=source,
            launch=self.opt_mapping("launch"),
            recovered_from=self.opt("recovered_from", str),
            quiet_wait=self.opt_mapping("quiet_wait"),
            lock_forced=self.opt("lock_forced", str),
            group=self.opt_mapping("group"),
            ensemble=self.opt_mapping("ensemble"),
            instance=self.opt("instance", int, 0),
            energy=self.energy(),
            allocator=self.opt_mapping("allocator"),
            details=self.mapping("details"),
            schema=int(d.get("schema", RECORD_SCHEMA)),
        )


def _number(x: Any) -> bool:
    return not isinstance(x, bool) and isinstance(x, (int, float)) and math.isfinite(x)


def _int(x: Any) -> bool:
    return not isinstance(x, bool) and isinstance(x, int)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {int: "an integer", float: "a number", str: "text", bool: "true or false"}
    if set(kinds) == {int, float}:
        return "a number"
    return " or ".join(names.get(k, k.__name__) for k in kinds)
