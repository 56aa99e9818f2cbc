"""The shapes a sweep is made of: a validated config, a value that waits for a host, a setting and a planned run.

Why a module of their own: the loader (:mod:`cpubench.spec.config`) makes them, the plan (:mod:`cpubench.spec.plan`)
and the run identity (:mod:`cpubench.spec.identity`) read them; with the types here neither of those needs the other.

A config remembers where each of its keys was written (``lines``), so a mistake found only when the config meets a
host (40 threads asked of an 18-core host) is still told as ``configs/x.yaml:12: matrix.num_intra_threads: ...``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cpubench.spec import axes

if TYPE_CHECKING:
    from cpubench.host.topology import Topology

KeyPath = tuple[Any, ...]  # a key path in the YAML document: ("matrix", "num_intra_threads", 0)


class ConfigError(Exception):
    """A config that cannot be run: the message is ``file:line: key: what is wrong``."""


def located(source: str, lines: dict[KeyPath, int], path: KeyPath, msg: str) -> ConfigError:
    """The error for ``path`` of a document, at the line of the nearest key that has one."""
    p = path
    while p not in lines and p:
        p = p[:-1]
    line = lines.get(p, 1)
    where = ""
    for part in path:
        # A key from the file is shown as written only when it is printable: a newline in a key must not split the
        # one-line error, and a 200-character key need not be shown whole.
        text = str(part) if str(part).isprintable() and len(str(part)) <= 80 else repr(str(part)[:80])
        where += f"[{part}]" if isinstance(part, int) else (f".{text}" if where else text)
    return ConfigError(f"{source}:{line}: {where or '(top)'}: {msg}")


@dataclass(frozen=True)
class OnHost:
    """A value a config gives that only a host turns into values (``num_intra_threads: all``), kept as written
    until :func:`cpubench.spec.plan.resolve` meets a topology; ``path`` is where it was written, for errors."""

    text: str
    path: KeyPath

    def __repr__(self) -> str:
        return self.text


@dataclass
class GenerateData:
    """``generate_data: {count: N, size: S}``: N synthetic JPEGs (S = WxH or one side; default make-data's 500x375,
    the size of an average ImageNet photo, so decoding costs what it does on real data), written as TFRecords."""

    count: int
    size: str = ""

    @property
    def label(self) -> str:
        return f"{self.count}x{self.size or 'default'}"


@dataclass
class Config:
    """A validated config. ``matrix`` and ``top`` map axis names to lists of values; ``models`` maps model names to
    lists of batch sizes.

    Loaded, a matrix may hold :class:`OnHost` values; :func:`cpubench.spec.plan.resolve` returns a copy with them
    expanded and ``topology`` set to the host it was resolved against (whose cores its runs are pinned to).
    """

    name: str
    source: str
    repeats: int = 2
    num_batches: int = 100
    num_warmup_batches: int = 10
    timeout: float = 1800.0
    data_dir: str = ""
    generate_data: GenerateData | None = None
    models: dict[str, list[int]] = field(default_factory=dict)
    matrix: dict[str, list[Any]] = field(default_factory=dict)
    top: dict[str, list[Any]] = field(default_factory=dict)
    exclude: list[dict[str, list[Any]]] = field(default_factory=list)
    flags: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    engine: list[str] | None = None
    description: str = ""
    batches_per_process: bool = False  # one engine process measures every batch size of a point (inference)
    lines: dict[KeyPath, int] = field(default_factory=dict, repr=False, compare=False)  # key path -> its line
    topology: Topology | None = field(default=None, repr=False, compare=False)  # the host it was resolved against

    def gives(self, axis: axes.Axis) -> bool:
        """Whether the config sets this axis (else every run takes its default)."""
        return bool(self.matrix.get(axis.name) if axis.source == axes.MATRIX else self.top.get(axis.name))

    def values_of(self, axis: axes.Axis) -> list[Any]:
        """The values a sweep takes on an axis: the config's, else the axis default alone."""
        given = self.matrix.get(axis.name) if axis.source == axes.MATRIX else self.top.get(axis.name)
        return list(given) if given else [axis.default]

    def on_host(self) -> list[OnHost]:
        """The values still waiting for a host (empty once resolved)."""
        return [v for values in self.matrix.values() for v in values if isinstance(v, OnHost)]

    def error(self, path: KeyPath, msg: str) -> ConfigError:
        """An error at the line ``path`` was written on (for checks made after loading, against a host)."""
        return located(self.source, self.lines, path, msg)

    @property
    def device(self) -> str:
        return str(self.values_of(axes.get("device"))[0])

    @property
    def num_gpus(self) -> list[int]:
        return self.values_of(axes.get("num_devices"))


@dataclass(frozen=True)
class Setting:
    """One column of the classic tables: every axis fixed except the model and batch size."""

    name: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Planned:
    """One engine process to run: a setting, a model, a batch size and a repeat index."""

    setting: Setting
    model: str
    batch_size: int
    repeat: int

    @property
    def key(self) -> tuple[str, str, int, int]:
        return (self.setting.name, self.model, self.batch_size, self.repeat)

    @property
    def label(self) -> str:
        """How progress lines and warnings name the run: ``<setting> <model> bs<k> r<i>``."""
        return f"{self.setting.name} {self.model} bs{self.batch_size} r{self.repeat}"

    @property
    def values(self) -> dict[str, Any]:
        """Every axis value of the run (the setting's, the model and the batch size)."""
        return {**self.setting.params, "model": self.model, "batch_size": self.batch_size}
