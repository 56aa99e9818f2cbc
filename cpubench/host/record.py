"""The host record: one typed description of one machine, the content of ``<root>/<host-id>/host.json``.

Why one type: the runner writes the host from what :mod:`cpubench.host.facts` reads off the machine, ``import-logs``
writes a host made from legacy logs, and the report, the pages and ``compare`` read it. When each of them built or
read a free dict, a key misspelt on one side was a silent ``None`` on the other, and a hand-edited ``host.json``
with a wrong type surfaced as a crash deep in a table. Here the fields are declared once, checked once when read
(:meth:`HostRecord.from_dict` names the first bad field), and written once (:meth:`HostRecord.to_dict`).

Nothing is lost between versions: keys this version does not declare (written by a newer or an older cpubench, or
by hand) are kept in :attr:`HostRecord.extra` and written back; a declared key that a file holds as ``null`` is
written back as ``null``, and one the file leaves out stays out. So a ``host.json`` read and written again without a
change is written byte for byte as it was (the store sorts keys and indents by two, as every version did).

Schema history: 1 (cpubench 0.1 and since; ``topology``, ``torch_version`` and ``torch_build`` were added without a
schema change, so older schema-1 files simply lack them; so were ``limits``, the measured roofs of
:mod:`cpubench.host.limits`, and ``gpu`` and ``tf_install``). A file of a newer schema is refused with "upgrade".
This module reads nothing and imports nothing of cpubench: the store (:mod:`cpubench.results.store`) does the I/O.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

HOST_SCHEMA = 1


class HostRecordError(ValueError):
    """A ``host.json`` that cannot be read as a host: the message names the field that is wrong (and the fix)."""


class NewerHostRecord(HostRecordError):
    """A ``host.json`` of a newer schema: only a newer cpubench can read it (and this one must not overwrite it)."""


# Every declared field's check: what a value must be when it is not null. The table is the schema's reference.
_TEXT = "text"
_INT = "int"  # an integer >= 0
_NUMBER = "number"  # a finite number
_BOOL = "bool"
_OBJECT = "object"  # a JSON object, kept as it is (nested blobs: caches, topology, builds)
_TEXTS = "texts"  # a list of text
_OBJECTS = "objects"  # a list of JSON objects
_GPUS = "gpus"  # a list of JSON objects (nvidia-smi's facts) or of names (host.json written by hand or long ago)
_ENV = "env"  # an object of text to text
_LIMITS = "limits"  # an object whose ``values`` is an object of entries (objects), each ``value`` a number or null

_CHECKS: dict[str, str] = {
    "host_id": _TEXT,
    "source": _TEXT,
    "cpu_brand": _TEXT,
    "cpu_vendor": _TEXT,
    "cpu_family": _INT,
    "cpu_model": _INT,
    "cpu_stepping": _INT,
    "cpu_hz_advertised": _NUMBER,
    "caches": _OBJECT,
    "cpu_flags_of_interest": _TEXTS,
    "sockets": _INT,
    "cores_physical": _INT,
    "cores_logical": _INT,
    "threads_per_core": _INT,
    "smt": _BOOL,
    "numa_nodes": _INT,
    "topology": _OBJECT,
    "memory_bytes": _INT,
    "kernel": _TEXT,
    "os": _TEXT,
    "arch": _TEXT,
    "hostname": _TEXT,
    "governor": _TEXT,
    "tf_version": _TEXT,
    "tf_build": _OBJECT,
    "torch_version": _TEXT,
    "torch_build": _OBJECT,
    "python": _TEXT,
    "python_executable": _TEXT,
    "gpus": _GPUS,
    "gpu": _OBJECT,
    "tf_install": _OBJECT,
    "env": _ENV,
    "machine_fingerprint": _TEXT,
    "collected": _TEXT,
    "cpubench_version": _TEXT,
    "limits": _LIMITS,
    "price": _OBJECT,
}

_EXPECTED = {
    _TEXT: "text",
    _INT: "an integer >= 0",
    _NUMBER: "a finite number",
    _BOOL: "true or false",
    _OBJECT: "an object",
    _TEXTS: "a list of text",
    _OBJECTS: "a list of objects",
    _GPUS: "a list of objects or names",
    _ENV: "an object of text values",
    _LIMITS: "an object with `values`, an object of entries each with a `value` (a finite number or null)",
}


@dataclass(frozen=True)
class HostRecord:
    """One machine (or a host made from legacy logs, ``source == "import"``). Every field but ``host_id`` may be
    None: unknown (left out of the file), or known to be empty when the name is in ``nulls`` (written as null).

    Frozen so that a record read from disk is what gets compared and merged; nested objects are plain dicts and
    lists (copied on the way out by :meth:`to_dict`), so "frozen-ish": do not mutate them in place.
    """

    host_id: str
    schema: int = HOST_SCHEMA
    source: str | None = None  # "import" for a host made from legacy logs; None for a measured machine
    # CPU (py-cpuinfo, reused from the previous host.json of the same machine: it takes seconds)
    cpu_brand: str | None = None
    cpu_vendor: str | None = None
    cpu_family: int | None = None
    cpu_model: int | None = None
    cpu_stepping: int | None = None
    cpu_hz_advertised: float | None = None
    caches: dict[str, Any] | None = None
    cpu_flags_of_interest: list[str] | None = None
    # Topology (sysfs)
    sockets: int | None = None
    cores_physical: int | None = None
    cores_logical: int | None = None
    threads_per_core: int | None = None
    smt: bool | None = None
    numa_nodes: int | None = None
    topology: dict[str, Any] | None = None  # cpubench.host.topology.Topology.to_dict()
    # System
    memory_bytes: int | None = None
    kernel: str | None = None
    os: str | None = None
    arch: str | None = None
    hostname: str | None = None
    governor: str | None = None
    # Frameworks
    tf_version: str | None = None  # for an imported host: every version its logs name, ", "-joined
    tf_build: dict[str, Any] | None = None  # {"onednn", "probe", "probe_key"}
    torch_version: str | None = None
    torch_build: dict[str, Any] | None = None  # {"probe", "probe_key"}
    python: str | None = None
    python_executable: str | None = None
    gpus: list[dict[str, Any] | str] | None = None
    # The GPUs in one object (facts.gpu_facts): count, models, memory, driver, PCIe links, the CUDA and cuDNN
    # TensorFlow was built with and the GPUs it sees; {"count": 0, "n/a": why} on a host without GPUs.
    gpu: dict[str, Any] | None = None
    # Which TensorFlow distribution is installed and why the scripts chose it (facts.tf_install)
    tf_install: dict[str, Any] | None = None
    env: dict[str, str] | None = None  # the speed-changing environment variables
    # Identity and provenance
    machine_fingerprint: str | None = None
    collected: str | None = None  # ISO 8601 UTC
    cpubench_version: str | None = None
    # Measured limits (cpubench.host.limits): GEMM and memory-bandwidth roofs, with how, when and for which machine
    limits: dict[str, Any] | None = None
    # The price per hour the user gave (cpubench.host.price; added without a schema change): {"per_hour", ...}
    price: dict[str, Any] | None = None
    # Keys this version does not declare, written back as they were read.
    extra: dict[str, Any] = field(default_factory=dict)
    # Declared fields that are None because the source said null (written back as null, not left out).
    nulls: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    # -- on disk

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``host.json``: the declared fields that are set or known null, and the extra keys."""
        out: dict[str, Any] = copy.deepcopy(self.extra)
        for f in fields(self):
            if f.name in ("extra", "nulls"):
                continue
            value = getattr(self, f.name)
            if value is not None or f.name in self.nulls:
                out[f.name] = copy.deepcopy(value)
        return out

    @classmethod
    def from_dict(cls, d: Any) -> HostRecord:
        """Read a host of any known schema; raise :class:`HostRecordError` naming the first bad field."""
        if not isinstance(d, Mapping):
            raise HostRecordError(f"not a host record (a JSON object) but {type(d).__name__}")
        schema = d.get("schema")
        if isinstance(schema, bool) or not isinstance(schema, int):
            raise HostRecordError(f"schema: expected an integer, got {schema!r}")
        if schema > HOST_SCHEMA:
            raise NewerHostRecord(
                f"written by a newer cpubench (host schema {schema}, this one reads {HOST_SCHEMA}): upgrade"
            )
        if schema < 1:
            raise HostRecordError(f"schema: unknown host schema {schema}")
        host_id = d.get("host_id")
        if not isinstance(host_id, str) or not host_id:
            raise HostRecordError(f"host_id: expected the host's id (text), got {host_id!r}")
        values: dict[str, Any] = {}
        nulls: set[str] = set()
        for key, kind in _CHECKS.items():
            if key not in d:
                continue
            value = d[key]
            if value is None:
                nulls.add(key)
            elif not _valid(kind, value):
                where, expected = "", _EXPECTED[kind]
                if kind == _LIMITS and (found := _limits_problem(value)):
                    where, expected, value = found
                shown = repr(value)
                shown = shown if len(shown) <= 120 else f"{shown[:117]}..."
                raise HostRecordError(f"{key}{where}: expected {expected}, got {shown}")
            values[key] = copy.deepcopy(value)
        extra = {k: copy.deepcopy(v) for k, v in d.items() if k not in _CHECKS and k != "schema"}
        return cls(**values, schema=schema, extra=extra, nulls=frozenset(nulls))

    # -- derived

    def has(self, name: str) -> bool:
        """Whether the record says something about a declared field: a value, or null meaning "looked, none"."""
        return getattr(self, name) is not None or name in self.nulls

    @property
    def imported(self) -> bool:
        """A host made from legacy logs (``import-logs``), not measured by ``cpubench run``."""
        return self.source == "import"


def _limits_problem(v: Any) -> tuple[str, str, Any] | None:
    """Where in a ``limits`` object its shape breaks (``.values.gemm_fp32_all.value``), what was expected there, and
    what is there: the error names the entry, not the whole object cut off at its start."""
    if not isinstance(v, dict):
        return None
    entries = v.get("values", {})
    if not isinstance(entries, dict):
        return ".values", "an object of entries", entries
    for name, e in entries.items():
        if not isinstance(e, dict):
            return f".values.{name}", "an object with a `value`", e
        if e.get("value") is not None and not _valid(_NUMBER, e["value"]):
            return f".values.{name}.value", "a finite number or null", e["value"]
    return None


def _valid(kind: str, v: Any) -> bool:
    if kind == _TEXT:
        return isinstance(v, str)
    if kind == _INT:
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0
    if kind == _NUMBER:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if kind == _BOOL:
        return isinstance(v, bool)
    if kind == _OBJECT:
        return isinstance(v, dict)
    if kind == _TEXTS:
        return isinstance(v, list) and all(isinstance(x, str) for x in v)
    if kind == _OBJECTS:
        return isinstance(v, list) and all(isinstance(x, dict) for x in v)
    if kind == _GPUS:
        return isinstance(v, list) and all(isinstance(x, (dict, str)) for x in v)
    if kind == _ENV:
        return isinstance(v, dict) and all(isinstance(k, str) and isinstance(x, str) for k, x in v.items())
    if kind == _LIMITS:  # every figure's share is read from these: a shape the readers cannot walk is refused here
        entries = v.get("values", {}) if isinstance(v, dict) else None
        return isinstance(entries, dict) and all(
            isinstance(e, dict) and (e.get("value") is None or _valid(_NUMBER, e["value"])) for e in entries.values()
        )
    raise AssertionError(kind)
