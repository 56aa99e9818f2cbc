"""Which host folder this machine writes to, and the host record already there.

Why here and not in :mod:`cpubench.host.facts`: both answers read the results folder (``<root>/<host-id>/host.json``),
which only :mod:`cpubench.results` knows; :mod:`cpubench.host` reads the machine and nothing else. The machine's side
(its fingerprint, its short CPU name) comes from there.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from cpubench.host import facts
from cpubench.host.record import HostRecord
from cpubench.results import store
from cpubench.results.store import HostIdError, validate_host_id

__all__ = ["HostIdError", "folder_fingerprint", "read_previous", "resolve_host_id"]


def read_previous(root: str | os.PathLike[str], host_id: str, say: Callable[[str], None]) -> HostRecord | None:
    """The host record already in the folder, or None: the runner is about to write a fresh one (its slow parts are
    simply collected again). One that cannot be read is moved aside first (``host.json.unreadable-<UTC time>``) and
    ``say`` is told where and why; one of a newer schema raises NewerHostError.

    Why aside: a damaged host record still holds what was measured (the limits, the facts) for someone to restore by
    hand; writing the fresh record over it would lose that for good."""
    f = store.host_dir(root, host_id) / store.HOST_FILE
    if not os.path.lexists(f):
        return None
    try:
        return store.read_host(f)
    except store.NewerHostError:
        raise
    except store.StoreError as e:
        kept = f.with_name(f"{store.HOST_FILE}.unreadable-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
        os.replace(f, kept)  # the file (or link) itself, never what a link points at
        say(f"cpubench: warning: {e}; kept as {kept.name}, a fresh host.json is written")
        return None


def folder_fingerprint(root: str | os.PathLike[str], host_id: str) -> str | None:
    """The machine fingerprint recorded in ``root/host_id/host.json``: None when there is no such file, "" when it
    cannot be read or names none (a folder of unknown origin: it is nobody's, so it is not claimed as ours).

    Raises store.NewerHostError for a host.json of a newer schema: the runner would overwrite it with an older one.
    """
    f = store.host_dir(root, host_id) / store.HOST_FILE
    if not f.exists():
        return None
    try:
        return store.read_host(f).machine_fingerprint or ""
    except store.NewerHostError:
        raise
    except store.StoreError:
        return ""


def resolve_host_id(root: str | os.PathLike[str], requested: str | None = None, unique: bool = False) -> str:
    """The host id to write under: ``--host-id`` as given, else the short CPU name, suffixed when needed.

    The suffix is the first 4 hex digits of the machine fingerprint: stable for a machine, so re-running resumes in
    the same folder. It is added when ``unique`` (identical machines whose folders will be merged later) or when the
    folder for the plain name already belongs to another machine.
    """
    root = Path(root)
    fp = facts.machine_fingerprint()
    if requested:
        host_id = validate_host_id(requested)
        other = folder_fingerprint(root, host_id)
        if other and other != fp:
            raise HostIdError(
                f"{store.host_dir(root, host_id)} holds results of another machine (fingerprint {other}, this one is "
                f"{fp}); pick another --host-id or leave it out to get a unique one"
            )
        return host_id
    base = facts.short_cpu_name(facts.cheap_brand())
    suffixed = f"{base}-{fp[:4]}"
    if unique:
        return suffixed
    other = folder_fingerprint(root, base)
    if other is None or other == fp:
        return base
    return suffixed
