"""The memory allocators the ``allocator`` axis can preload into an engine child, found on this machine.

Why the system's libraries: Debian and Ubuntu ship ``libtcmalloc-minimal4`` (``libtcmalloc_minimal.so.4``) and
``libjemalloc2`` (``libjemalloc.so.2``); preloading the distribution's build (``LD_PRELOAD``) needs nothing compiled
and is what Packrat's allocator study does. A library that is not installed makes the value ``n/a`` with where it
was looked for, never a run silently measured with glibc's malloc (the engine reads its own memory map and the
runner fails a run whose map does not show the allocator asked for).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

# allocator -> the shared objects that provide it, most specific first
LIBRARIES = {
    "tcmalloc": ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4"),
    "jemalloc": ("libjemalloc.so.2",),
}
PACKAGES = {"tcmalloc": "libtcmalloc-minimal4", "jemalloc": "libjemalloc2"}
LIB_DIRS_ENV = "CPUBENCH_LIB_DIRS"  # os.pathsep-separated folders searched instead of the standard ones (tests)


def lib_dirs() -> list[Path]:
    """The standard library folders of this architecture (Debian's multiarch folder first)."""
    override = os.environ.get(LIB_DIRS_ENV)
    if override is not None:
        return [Path(d) for d in override.split(os.pathsep) if d]
    triplet = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu"}.get(platform.machine(), "")
    dirs = [f"/usr/lib/{triplet}", f"/lib/{triplet}"] if triplet else []
    return [Path(d) for d in (*dirs, "/usr/lib64", "/lib64", "/usr/lib", "/lib", "/usr/local/lib")]


def find(allocator: str) -> str | None:
    """The path of ``allocator``'s library on this machine, or None."""
    for d in lib_dirs():
        for name in LIBRARIES.get(allocator, ()):
            p = d / name
            if p.is_file():
                return str(p)
    return None


def missing(allocator: str) -> str:
    """Why ``allocator`` cannot be preloaded here: which files were looked for where, and the package to install."""
    names = " or ".join(LIBRARIES.get(allocator, (allocator,)))
    where = ", ".join(str(d) for d in lib_dirs())
    return f"{names} not found in {where} (install {PACKAGES.get(allocator, allocator)})"
