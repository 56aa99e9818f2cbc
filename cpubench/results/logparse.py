"""The one place that reads upstream-format tf_cnn_benchmarks stdout and the classic log file names.

Why one module: ``cpubench import-logs`` turns years of old logs into run records, and the engine's tests check that
our engine prints exactly what upstream printed; both must agree on what a log *means*. Everything here is pure text
handling (no TensorFlow, no files written) and returns plain dataclasses, so it is cheap to call from anywhere.

What a log looks like (upstream format)::

    TensorFlow:  2.21
    Model:       resnet50
    Dataset:     imagenet (synthetic)
    Mode:        training
    SingleSess:  False
    Batch size:  64 global
                 64 per device
    Num batches: 100
    Num epochs:  0.00
    Devices:     ['/cpu:0']
    NUMA bind:   False
    Data format: NHWC
    Optimizer:   sgd
    Variables:   parameter_server
    AllReduce:   nccl                      (only when it applies)
    ==========
    ...
    Step	Img/sec	total_loss
    1	images/sec: 6.2 +/- 0.0 (jitter = 0.0)	7.853
    ----------------------------------------------------------------
    total images/sec: 6.13
    ----------------------------------------------------------------

Real logs also carry TensorFlow warnings anywhere (stderr is merged), and a crashed run stops before
``total images/sec``; the parser skips what it does not know and reports what it found.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass, field
from pathlib import PurePath

NO_TOTAL_REASON = "no total images/sec line"

# Header keys upstream prints, in its order. Others (older or newer versions) are kept raw in ParsedLog.header.
HEADER_KEYS = (
    "TensorFlow",
    "PyTorch",
    "Model",
    "Dataset",
    "Mode",
    "SingleSess",
    "Batch size",
    "Num batches",
    "Num epochs",
    "Devices",
    "NUMA bind",
    "Data format",
    "Optimizer",
    "Variables",
    "AllReduce",
)

# Our PyTorch engine prints the same header with "PyTorch:" first (and its "Execution:" mode).
_HEADER_START = re.compile(r"^(TensorFlow|PyTorch):\s+(\S.*)$")
FRAMEWORKS = {"TensorFlow": "tensorflow", "PyTorch": "pytorch"}
_HEADER_LINE = re.compile(r"^([A-Z][A-Za-z]*(?: [A-Za-z]+)*):\s*(.*)$")
_HEADER_END = re.compile(r"^=+\s*$")
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?nan|[-+]?inf"
_STEP_LINE = re.compile(
    rf"^\s*(\d+)\s+images/sec:\s*({_NUMBER})"
    rf"(?:\s*\+/-\s*({_NUMBER}))?"
    rf"(?:\s*\(jitter\s*=\s*({_NUMBER})\))?"
    rf"((?:\s+(?:{_NUMBER}))*)\s*$",
    re.IGNORECASE,
)
_TOTAL_LINE = re.compile(rf"^\s*total images/sec:\s*({_NUMBER})\s*$", re.IGNORECASE)
_DEVICE = re.compile(r"(?:^|/|device:)(cpu|gpu|tpu|xla_cpu|xla_gpu):(\d+)", re.IGNORECASE)
_ERROR_LINE = re.compile(r"(?:^|[\s.])([A-Z]\w*(?:Error|Exception)\b.*)$")
_FATAL_LINE = re.compile(r"^(Killed|Segmentation fault.*|Aborted.*|Bus error.*|Illegal instruction.*)$")

# <model>-<syn|real>-<parameter_server|replicated>[-nccl][-distortions]-<N>gpus-<batch>-<iter>.log
_CLASSIC_NAME = re.compile(
    r"^(?P<model>.+?)-(?P<data>syn|real)-(?P<variable_update>parameter_server|replicated)"
    r"(?P<nccl>-nccl)?(?P<distortions>-distortions)?-(?P<num_devices>\d+)gpus-(?P<batch_size>\d+)-(?P<iter>\d+)\.log$"
)


@dataclass
class Step:
    """One progress line: ``N<TAB>images/sec: X +/- S (jitter = J)<TAB>LOSS [more metrics]``.

    ``images_per_sec`` is upstream's running mean over the steps so far, ``spread`` its +/- (standard error times
    1.96 in upstream), ``jitter`` the median absolute deviation of step times; ``values`` holds the trailing numbers
    (the loss, then top-1/top-5 accuracy when printed).
    """

    step: int
    images_per_sec: float
    spread: float | None = None
    jitter: float | None = None
    values: list[float] = field(default_factory=list)

    @property
    def loss(self) -> float | None:
        return self.values[0] if self.values else None


@dataclass
class ParsedLog:
    """What one tf_cnn_benchmarks stdout says. Fields are None when the log does not say."""

    header: dict[str, str] = field(default_factory=dict)  # raw header values (continuation lines joined by "\n")
    framework: str | None = None  # "tensorflow" or "pytorch", from the header's first line
    tf_version: str | None = None  # the framework's version (the header's first line)
    model: str | None = None
    dataset: str | None = None  # e.g. "imagenet"
    synthetic: bool | None = None
    mode: str | None = None  # "training", "forward-only", ...
    single_sess: bool | None = None
    batch_size_global: int | None = None
    batch_size_per_device: int | None = None
    num_batches: int | None = None
    num_epochs: float | None = None
    devices: list[str] = field(default_factory=list)
    numa_bind: bool | None = None
    data_format: str | None = None
    optimizer: str | None = None
    variable_update: str | None = None
    all_reduce: str | None = None
    steps: list[Step] = field(default_factory=list)
    total_images_per_sec: float | None = None
    totals: list[float] = field(default_factory=list)  # every total line, in order (more than one: logs concatenated)
    last_error: str | None = None  # the last line that looks like an exception or a fatal signal

    @property
    def has_header(self) -> bool:
        return bool(self.header)

    @property
    def is_benchmark_log(self) -> bool:
        """True when the text looks like tf_cnn_benchmarks output at all (header, step or total line)."""
        return self.has_header or bool(self.steps) or self.total_images_per_sec is not None

    @property
    def complete(self) -> bool:
        return self.total_images_per_sec is not None

    @property
    def num_devices(self) -> int | None:
        return len(self.devices) or None

    @property
    def device_kind(self) -> str | None:
        """ "cpu" or "gpu" (the kind of the first device), from ``Devices:``."""
        for d in self.devices:
            m = _DEVICE.search(d)
            if m:
                return m.group(1).lower().replace("xla_", "")
        return None

    @property
    def forward_only(self) -> bool | None:
        if self.mode is None:
            return None
        low = self.mode.lower()
        return any(w in low for w in ("forward", "eval", "inference"))

    @property
    def total_problem(self) -> str | None:
        """Why the total line holds no figure a record can keep (nan, infinite, 0 or below), or None.

        Such a line says neither "measured this fast" nor "crashed before the end", so the log cannot be a record of
        either kind; the importer skips it and says why.
        """
        total = self.total_images_per_sec
        if total is None:
            return None
        if math.isnan(total):
            return "total images/sec is nan, not a figure"
        if math.isinf(total):
            return f"total images/sec is {'-' if total < 0 else ''}inf (too large a number), not a figure"
        if total <= 0:
            return f"total images/sec is {total:g}, not a figure above 0"
        return None

    @property
    def failure_reason(self) -> str | None:
        """None for a complete log; else one line: why there is no figure, and the last error seen."""
        if self.complete:
            return None
        if self.last_error:
            return f"{NO_TOTAL_REASON}; last error: {self.last_error}"
        return NO_TOTAL_REASON


@dataclass
class ClassicName:
    """The fields of a classic log file name (``resnet50-syn-replicated-nccl-4gpus-64-1.log``)."""

    model: str
    data: str  # "syn" or "real"
    variable_update: str  # "parameter_server" or "replicated"
    nccl: bool
    distortions: bool
    num_devices: int
    batch_size: int  # per device
    iteration: int  # as written in the name (classic scripts count from 1)

    @property
    def params(self) -> dict[str, object]:
        """The axis values the name tells (classic logs are GPU runs of training)."""
        return {"data": self.data, "variable_update": self.variable_update, "nccl": self.nccl,
                "distortions": self.distortions, "device": "gpu", "num_devices": self.num_devices}  # fmt: skip

    @property
    def setting(self) -> str:
        from cpubench.spec import axes

        return axes.setting_name(self.params)


def parse_log_name(name: str | PurePath) -> ClassicName | None:
    """Parse a classic log file name (directories are ignored); None when the name is not of that pattern."""
    m = _CLASSIC_NAME.match(PurePath(name).name)
    if not m:
        return None
    return ClassicName(
        model=m["model"],
        data=m["data"],
        variable_update=m["variable_update"],
        nccl=bool(m["nccl"]),
        distortions=bool(m["distortions"]),
        num_devices=int(m["num_devices"]),
        batch_size=int(m["batch_size"]),
        iteration=int(m["iter"]),
    )


def parse_log(text: str) -> ParsedLog:
    """Parse one tf_cnn_benchmarks stdout (stderr may be merged in). Never raises on odd input."""
    out = ParsedLog()
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    in_header = False
    last_key: str | None = None
    for raw in lines:
        line = raw.rstrip()
        if not in_header and not out.header:
            m = _HEADER_START.match(line)
            if m:
                in_header = True
                last_key = m.group(1)
                out.header[last_key] = m.group(2).strip()
                out.framework = FRAMEWORKS[last_key]
                continue
        if in_header:
            if _HEADER_END.match(line):
                in_header = False
                continue
            if line[:1].isspace() and line.strip() and last_key is not None:
                out.header[last_key] += "\n" + line.strip()
                continue
            m = _HEADER_LINE.match(line)
            if m and (m.group(1) in HEADER_KEYS or not m.group(1).isupper()):
                last_key = m.group(1)
                out.header[last_key] = m.group(2).strip()
                continue
            if line.startswith("Step\t") or _STEP_LINE.match(line):
                in_header = False  # a header cut short (no "=====" line): read on as the body
            else:
                continue  # a warning printed into the middle of the header
        m = _STEP_LINE.match(line)
        if m:
            out.steps.append(
                Step(
                    step=int(m.group(1)),
                    images_per_sec=float(m.group(2)),
                    spread=_float(m.group(3)),
                    jitter=_float(m.group(4)),
                    values=[float(v) for v in m.group(5).split()],
                )
            )
            continue
        m = _TOTAL_LINE.match(line)
        if m:
            out.totals.append(float(m.group(1)))
            continue
        m = _FATAL_LINE.match(line.strip())
        if m:
            out.last_error = m.group(1)
            continue
        m = _ERROR_LINE.search(line.strip())
        if m and not line.lstrip().startswith(("File ", "Traceback")):
            out.last_error = _one_line(m.group(1))
    out.total_images_per_sec = out.totals[-1] if out.totals else None
    _fill_header_fields(out)
    return out


def _fill_header_fields(out: ParsedLog) -> None:
    h = out.header
    out.tf_version = h.get("TensorFlow") or h.get("PyTorch") or None
    out.model = h.get("Model") or None
    if "Dataset" in h:
        ds = h["Dataset"]
        out.synthetic = "synthetic" in ds.lower()
        out.dataset = re.sub(r"\s*\(.*\)\s*$", "", ds).strip() or None
    out.mode = h.get("Mode") or None
    out.single_sess = _bool(h.get("SingleSess"))
    if "Batch size" in h:
        bs = h["Batch size"]
        g = re.search(r"(\d+)\s+global", bs)
        p = re.search(r"(\d+)\s+per device", bs)
        out.batch_size_global = int(g.group(1)) if g else None
        out.batch_size_per_device = int(p.group(1)) if p else None
        if not g and not p and bs.strip().isdigit():
            out.batch_size_per_device = int(bs.strip())
    out.num_batches = _int(h.get("Num batches"))
    out.num_epochs = _float(h.get("Num epochs"))
    if "Devices" in h:
        out.devices = _devices(h["Devices"])
    out.numa_bind = _bool(h.get("NUMA bind"))
    out.data_format = h.get("Data format") or None
    out.optimizer = h.get("Optimizer") or None
    out.variable_update = h.get("Variables") or None
    out.all_reduce = h.get("AllReduce") or None
    if out.batch_size_per_device is None and out.batch_size_global and out.num_devices:
        out.batch_size_per_device = out.batch_size_global // out.num_devices


def _devices(raw: str) -> list[str]:
    try:
        value = ast.literal_eval(raw.strip())
        if isinstance(value, (list, tuple)):
            return [str(v) for v in value]
    except (ValueError, SyntaxError):
        pass
    return [m.group(0).lstrip("/") for m in _DEVICE.finditer(raw)]


def _one_line(s: str, limit: int = 300) -> str:
    s = " ".join(s.split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _float(s: str | None) -> float | None:
    if s is None:
        return None
    try:
        return float(s)
    except ValueError:
        return None


def _int(s: str | None) -> int | None:
    if s is None:
        return None
    try:
        return int(s.strip())
    except ValueError:
        return None


def _bool(s: str | None) -> bool | None:
    if s is None:
        return None
    low = s.strip().lower()
    if low in ("true", "1", "yes"):
        return True
    if low in ("false", "0", "no"):
        return False
    return None
