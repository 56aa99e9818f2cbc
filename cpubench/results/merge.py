"""Host folders merged into one set of runs: hosts in column order, one record per run, every warning raised.

Why a module of its own: ``cpubench report``, ``pages`` and ``compare`` read many folders (several hosts, or one
host split over folders) and must agree on what they hold. Merging checks its inputs: records of an unknown schema
(reported by :mod:`cpubench.results.store`), two folders that claim the same host id with different machine
fingerprints (:class:`MergeError`: the commands exit 2), and the same run recorded twice with status ok (a warning;
the earliest record is kept). It reads the store only through :mod:`cpubench.results.store`.

A merged host is its typed :class:`~cpubench.host.record.HostRecord` (under the id it is reported as) and the
folders it came from (:class:`MergedHost`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cpubench.host.record import HostRecord
from cpubench.results import store
from tf_cnn_benchmarks.record import RunRecord


class MergeError(Exception):
    """Inputs that cannot be merged without guessing (one clear line: what, where, and the fix)."""


@dataclass
class MergedRun:
    """A kept record and the folder it was read from."""

    rec: RunRecord
    folder: str


@dataclass
class MergedHost:
    """A host of a merge: its record (under the id it is reported as) and the folders its runs came from."""

    record: HostRecord
    folders: list[str]

    @property
    def host_id(self) -> str:
        return self.record.host_id

    def to_dict(self) -> dict[str, Any]:
        """The host as ``results.json`` gives it: its ``host.json`` fields and the folders."""
        return {**self.record.to_dict(), "host_id": self.host_id, "folders": list(self.folders)}


@dataclass
class Merged:
    """Host folders merged: hosts in column order, deduplicated run records, and every warning raised."""

    hosts: list[MergedHost]
    runs: list[MergedRun]
    warnings: list[str] = field(default_factory=list)
    store_warnings: list[str] = field(default_factory=list)  # the subset cpubench.results.store raised (and printed)
    left_out: list[str] = field(default_factory=list)  # folders of runs without host.json, each said in warnings

    @property
    def host_ids(self) -> list[str]:
        return [h.host_id for h in self.hosts]

    def cpu_brands(self) -> dict[str, Any]:
        """host id -> the CPU brand its host record names (None where it names none)."""
        return {h.host_id: h.record.cpu_brand for h in self.hosts}


def merge(paths: Iterable[str | Path]) -> Merged:
    """Read host folders (or folders of them) and merge them; raise MergeError on a host id clash, or for a folder
    named in ``paths`` that holds runs but no ``host.json`` (its runs cannot be told from another machine's); one
    of that kind inside a folder of hosts is left out with a warning."""
    paths = list(paths)
    fix = f"copy {store.HOST_FILE} from that host's folder into it and run again"
    named, inside = store.folders_without_host(paths)
    if named:
        raise MergeError(f"{named[0]}: {store.RUNS_FILE} but no {store.HOST_FILE}, so its runs belong to no known "
                         f"machine: {fix}")  # fmt: skip
    left_out = [f"{c}: {store.RUNS_FILE} but no {store.HOST_FILE}; its runs are left out: {fix}" for c in inside]
    warnings: list[str] = list(left_out)
    store_warnings: list[str] = []
    hosts: dict[str, MergedHost] = {}
    runs: list[MergedRun] = []
    for d in store.find_host_dirs(paths):
        hr = store.load_host(d)
        warnings.extend(hr.warnings)
        store_warnings.extend(hr.warnings)
        hid = hr.host_id
        fp = hr.host.machine_fingerprint
        if hid in hosts:
            first = hosts[hid]
            if first.record.machine_fingerprint != fp:
                raise MergeError(
                    f"host id {hid!r} is claimed by {first.folders[0]} and {d}, which are different machines "
                    f"(fingerprints {first.record.machine_fingerprint!r} and {fp!r}); give one of them another id "
                    f"(rename the folder and its host_id, or re-run with --host-id) and report again"
                )
            first.folders.append(str(d))
        else:
            hosts[hid] = MergedHost(replace(hr.host, host_id=hid), [str(d)])
        for rec in hr.runs:
            if rec.host_id != hid:
                warnings.append(f"{d}: a record says host {rec.host_id!r}; filed under the folder's {hid!r}")
            missing = [k for k in ("setting", "model") if not getattr(rec, k)]
            if missing:
                warnings.append(f"{d}: a record lacks {', '.join(missing)}; skipped")
                continue
            runs.append(MergedRun(replace(rec, host_id=hid), str(d)))
    kept = dedupe(runs, warnings)
    return Merged(hosts=list(hosts.values()), runs=kept, warnings=warnings, store_warnings=store_warnings,
                  left_out=left_out)  # fmt: skip


def _run_key(r: MergedRun) -> tuple[Any, ...]:
    rec = r.rec
    return (rec.host_id, rec.setting, rec.model, rec.batch_size, rec.repeat, rec.run_hash)


def dedupe(runs: list[MergedRun], warnings: list[str]) -> list[MergedRun]:
    """One record per host x setting x model x batch x repeat x run hash.

    Two ok records of the same run are the same run recorded twice (a folder copied twice, a log imported twice):
    warn and keep the earliest. One ok record beside failed ones is a retry that succeeded: keep the ok one.
    Only failures: keep the latest, it says why the run fails now.
    """
    groups: dict[tuple[Any, ...], list[MergedRun]] = {}
    for r in runs:
        groups.setdefault(_run_key(r), []).append(r)
    out: list[MergedRun] = []
    for key, recs in groups.items():
        if len(recs) == 1:
            out.append(recs[0])
            continue
        oks = sorted((r for r in recs if r.rec.ok), key=lambda r: str(r.rec.started or "~"))
        if len(oks) > 1:
            host, setting, model, bs, repeat, chash = key
            where = ", ".join(sorted({r.folder for r in oks}))
            warnings.append(
                f"{host} {setting} {model} bs {bs} repeat {repeat} (run {chash}) recorded {len(oks)} times "
                f"with status ok (in {where}); kept the one started {oks[0].rec.started or 'first'}, "
                f"dropped {len(oks) - 1}"
            )
        if oks:
            out.append(oks[0])
        else:
            out.append(max(recs, key=lambda r: str(r.rec.started or "")))
    return out


def relabel(merged: Merged, host_id: str) -> Merged:
    """A merge of one host under another id (its host record and every run): ``cpubench compare`` tells two folders
    of one host apart by their paths."""
    host = MergedHost(replace(merged.hosts[0].record, host_id=host_id), list(merged.hosts[0].folders))
    runs = [MergedRun(replace(r.rec, host_id=host_id), r.folder) for r in merged.runs]
    return Merged([host], runs, merged.warnings, merged.store_warnings)
