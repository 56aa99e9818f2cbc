"""Every sweep axis, declared once: what it is called, which engine flags it sets, what values it takes, how it shows
in a setting name, where it ranks in a report, and whether it is part of a measurement's identity.

Why one table: an axis used to be spelled out in about eight places (validation, plan expansion, the engine command
line, two copies of the setting-name rule, the list of runner-owned flags, the report's name parser, the log
importer). Now each of those is a function of this table, so a new axis is one :class:`Axis` entry: config
validation (``matrix.<axis>`` or a top-level key, with "did you mean"), exclude rules, argv, the setting name, the run
hash and the report order follow from it.

Types and allowed values come from the engine's own flag table (:mod:`tf_cnn_benchmarks.flags`) where the axis sets
an engine flag, so the two can never disagree. A value of ``None`` means "not known" (a legacy log that does not say):
it is left out of names and sorts last.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from cpubench.spec import frameworks

# Where a config gives an axis's values.
MATRIX = "matrix"  # matrix.<name>: a value or a list, crossed with the other axes
TOP = "top"  # a top-level key (device, num_gpus)
MODELS = "models"  # the models: mapping (model name -> batch sizes)

Fragment = Callable[[Any, dict[str, Any]], "str | None"]

# The most threads a thread axis may ask for (a value, the end of a range, or `all` on a host): the largest hosts
# today have under 1,000 logical CPUs, and a bound keeps `1..3000000` from being built before it is refused.
MAX_THREADS = 4096


@dataclass(frozen=True)
class Context:
    """What an axis's argv may need beyond its value."""

    data_dir: str = ""


@dataclass(frozen=True)
class Launch:
    """How the runner starts one engine child: the CPUs it may run on and the NUMA nodes it may allocate on
    (None: as the runner itself)."""

    cpus: list[int] | None = None
    membind: list[int] | None = None
    # The memory allocator to preload (``allocator`` axis): its name and the library put in the child's LD_PRELOAD
    allocator: str | None = None
    preload: str | None = None


def flag_value(v: Any) -> str:
    """How a value is spelled on the engine command line (booleans lower-case, as absl writes them)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


@dataclass(frozen=True)
class Axis:
    """One dimension of a sweep.

    ``flags`` are the engine flags the axis owns (a config may not set them under ``flags:``); the first is the one
    its value is passed as, unless ``argv`` says otherwise. ``kind``, ``choices`` and ``minimum`` default to the
    engine flag's; ``maximum`` bounds an integer axis (threads). ``fragment`` turns a value (and the run's other
    values) into a setting-name part, or None to leave it out; ``None`` for the whole axis keeps it out of setting
    names (model, batch size: they are table rows).
    ``rank`` orders reports (lower first); ``order`` sorts one axis's values (default: their place in ``choices``,
    else the value itself). ``identity`` axes enter the run hash.
    """

    name: str
    flags: tuple[str, ...] = ()
    default: Any = None
    kind: type | None = None
    choices: tuple[Any, ...] | None = None
    minimum: int | None = None
    maximum: int | None = None
    source: str = MATRIX
    config_key: str = ""
    fragment: Fragment | None = None
    argv: Callable[[Any, Context], list[str]] | None = None
    rank: int = 0
    order: Callable[[Any], Any] | None = None
    identity: bool = True
    help: str = ""
    choices_from: Callable[[], Sequence[Any]] | None = field(default=None, compare=False)
    # How the runner starts the child for a value (its CPUs, its NUMA memory), for axes that are not engine flags.
    launch: Callable[[Any, dict[str, Any], Launch, Any], Launch] | None = field(default=None, compare=False)
    # A text value a config may give instead of a list ("1..8", "all"): (text, topology) -> its values, or None
    # where the text needs a host and no topology is given ("all" at load: resolved later against a host).
    expand: Callable[[str, Any], list[Any] | None] | None = field(default=None, compare=False)
    # The default where it depends on the run's other values (execution: graph in TensorFlow, eager in PyTorch).
    default_for: Callable[[dict[str, Any]], Any] | None = field(default=None, compare=False)
    # Why a value means nothing beside the run's other values (pytorch has no graph execution), or None: such a
    # combination of a sweep is left out of its plan, not run and failed.
    applies: Callable[[Any, dict[str, Any]], str | None] | None = field(default=None, compare=False)
    # The value that actually runs beside the run's other values, with why, or None where it runs as asked (pytorch
    # on one device runs every variable update as parameter_server): the plan names and measures that value, once.
    runs_as: Callable[[Any, dict[str, Any]], tuple[Any, str] | None] | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        """The config's name for the axis (``num_gpus`` for the device count, else the axis name)."""
        return self.config_key or self.name

    @property
    def where(self) -> str:
        """Where a config sets it, for messages (``matrix.nccl``, ``num_gpus``, ``models``)."""
        return {MATRIX: f"matrix.{self.key}", MODELS: "models"}.get(self.source, self.key)

    @property
    def value_kind(self) -> type:
        if self.kind is not None:
            return self.kind
        flag = _engine_flag(self.flags[0]) if self.flags else None
        return flag.type if flag is not None else str

    @property
    def allowed(self) -> tuple[Any, ...] | None:
        """Allowed values: declared, else computed (the model registry), else the engine flag's choices."""
        if self.choices is not None:
            return self.choices
        if self.choices_from is not None:
            return tuple(self.choices_from())
        flag = _engine_flag(self.flags[0]) if self.flags else None
        if flag is not None and flag.choices is not None:
            return tuple(c for c in flag.choices if c != "")
        return None

    def default_in(self, values: dict[str, Any]) -> Any:
        """The axis's default for a run with these other values."""
        return self.default_for(values) if self.default_for is not None else self.default

    def to_argv(self, value: Any, ctx: Context) -> list[str]:
        if self.argv is not None:
            return self.argv(value, ctx)
        return [f"--{self.flags[0]}={flag_value(value)}"] if self.flags else []

    def name_part(self, value: Any, values: dict[str, Any]) -> str | None:
        if self.fragment is None or value is None:
            return None
        return self.fragment(value, values)

    def sort_value(self, value: Any) -> tuple[Any, ...]:
        if value is None:
            return (3, "")  # not known (a legacy log that does not say): after every known value
        if self.order is not None:
            return (1, self.order(value))
        if isinstance(value, bool):
            return (1, int(value))
        allowed = self.allowed
        if allowed is not None and value in allowed:
            return (1, allowed.index(value))
        return (2, value if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value))


@functools.cache
def _engine_flags() -> dict[str, Any]:
    from tf_cnn_benchmarks import flags as engine_flags  # flag table only: no TensorFlow import

    return {f.name: f for f in engine_flags.FLAGS}


def _engine_flag(name: str) -> Any:
    return _engine_flags().get(name)


def model_names() -> list[str]:
    """The models the engine declares (its registry; no TensorFlow import)."""
    from tf_cnn_benchmarks.models import registry

    return list(registry.names())


# ----------------------------------------------------------------------------------------------- name fragments


def itself(value: Any, _values: dict[str, Any]) -> str:
    return str(value)


def word(word: str) -> Fragment:
    """The word when the (boolean) axis is on: ``-nccl``, ``-inference``."""
    return lambda value, _values: word if value else None


def off_default(fmt: str, default: Any) -> Fragment:
    """``fmt`` with the value, only when the value is not the default: classic names stay as they were."""
    return lambda value, _values: None if value == default else fmt.format(value)


def _devices(value: Any, values: dict[str, Any]) -> str:
    return f"{value}{'cpus' if values.get('device', 'cpu') == 'cpu' else 'gpus'}"


# ------------------------------------------------------------------------------------------------ special argv


def _data_argv(value: Any, ctx: Context) -> list[str]:
    return [f"--data_dir={ctx.data_dir}", "--data_name=imagenet"] if value == "real" else []


def _nccl_argv(value: Any, _ctx: Context) -> list[str]:
    return [f"--all_reduce_spec={'nccl' if value else ''}"]


# --------------------------------------------------------------------------------------- placement and memory


def _place(value: Any, values: dict[str, Any], launch: Launch, topo: Any) -> Launch:
    """Pin to ``num_intra_threads`` physical cores placed as the value says (cpubench.host.topology)."""
    if value == "none":
        return launch
    from cpubench.host import topology

    return replace(launch, cpus=topology.placement_cpus(topo, value, int(values.get("num_intra_threads") or 0)))


def _bind(value: Any, _values: dict[str, Any], launch: Launch, topo: Any) -> Launch:
    """Bind memory to the placed cores' own node (local) or to another node (remote)."""
    if value == "default":
        return launch
    from cpubench.host import topology

    return replace(launch, membind=topology.memory_nodes(topo, launch.cpus or list(topo.cpus), value))


def _preload(value: Any, _values: dict[str, Any], launch: Launch, _topo: Any) -> Launch:
    """Preload the system's library of the allocator into the child (LD_PRELOAD); n/a where it is not installed."""
    from cpubench.host import allocators, topology

    path = allocators.find(value)
    if path is None:
        raise topology.NotApplicable(allocators.missing(value))
    return replace(launch, allocator=value, preload=path)


def _threads(text: str, topo: Any) -> list[int] | None:
    """``all`` = 1..the physical cores of one socket of ``topo`` (None without one: it waits for a host);
    ``A..B`` = A, A+1, ..., B on any host. Either end is checked against :data:`MAX_THREADS` before a list is built."""
    if text.strip() == "all":
        if topo is None:
            return None
        if topo.cores_per_socket > MAX_THREADS:
            raise ValueError(
                f"all: this host has {topo.cores_per_socket:,} cores per socket, over the {MAX_THREADS} threads "
                "a run may ask for"
            )
        return list(range(1, topo.cores_per_socket + 1))
    a, sep, b = (x.strip() for x in text.partition(".."))
    if not sep or not a.isdecimal() or not b.isdecimal():
        raise ValueError(f"{text[:40]!r}: expected a number, a list, `all` or a range like 1..8")
    if len(b) > 9 or int(b) > MAX_THREADS:  # the length first: int() of a huge text is slow, or refused
        raise ValueError(f"{text[:40]!r}: a range may go up to {MAX_THREADS} threads")
    if int(a) > int(b):
        raise ValueError(f"{text[:40]!r}: expected a number, a list, `all` or a range like 1..8")
    return list(range(int(a), int(b) + 1))


def _execution(value: Any, _values: dict[str, Any]) -> str | None:
    return {"eager": "eager", "xla": "xlajit", "script": "script", "compile": "compile"}.get(value)


# ------------------------------------------------------------------------ what a framework can run (spec.frameworks)


def _caps(values: dict[str, Any]) -> frameworks.Capabilities:
    return frameworks.of(values.get("framework"))


def _execution_default(values: dict[str, Any]) -> str:
    return _caps(values).executions[0]


def _execution_applies(value: Any, values: dict[str, Any]) -> str | None:
    caps = _caps(values)
    modes = caps.executions
    return None if value in modes else f"{caps.name} has no {value} execution (it runs {', '.join(modes)})"


def _xla_applies(value: Any, values: dict[str, Any]) -> str | None:
    caps = _caps(values)
    return f"{caps.name} has no XLA ({caps.no_xla})" if value and caps.no_xla else None


def _data_applies(value: Any, values: dict[str, Any]) -> str | None:
    caps = _caps(values)
    if value == "real" and not caps.real_data:
        return f"{caps.name} has no real-data input (synthetic data only)"
    return None


def _device_applies(value: Any, values: dict[str, Any]) -> str | None:
    caps = _caps(values)
    return None if value in caps.device_types else f"{caps.name} runs on {' or '.join(caps.device_types)} only"


def _devices_applies(value: Any, values: dict[str, Any]) -> str | None:
    caps = _caps(values)
    if caps.max_devices is None or not isinstance(value, int) or value <= caps.max_devices:
        return None
    most = "one device" if caps.max_devices == 1 else f"{caps.max_devices} devices at most"
    return f"{caps.name} runs {most}, not {value}"


def _nccl_applies(value: Any, values: dict[str, Any]) -> str | None:
    caps = _caps(values)
    if value and not caps.nccl:
        return f"{caps.name} has no NCCL all-reduce"
    if value and values.get("logical_gpus"):
        return "NCCL cannot all-reduce between logical devices of one GPU (it needs distinct physical GPUs)"
    return None


def _logical_argv(value: Any, _ctx: Context) -> list[str]:
    """Only when on: an engine without the flag (upstream's, a custom ``engine:``) still takes the command line."""
    return ["--logical_gpus=true"] if value else []


def _logical_applies(value: Any, values: dict[str, Any]) -> str | None:
    if value and values.get("device", "cpu") != "gpu":
        return "logical_gpus splits one GPU; with device: cpu, num_gpus already splits the CPU into logical devices"
    return None


def _update_runs_as(value: Any, values: dict[str, Any]) -> tuple[Any, str] | None:
    """On one device a framework whose variables are then local runs every variable update as its one mode."""
    caps = _caps(values)
    mode = caps.one_device_update
    if mode is None or value == mode or values.get("num_devices", 1) != 1:
        return None
    return mode, f"{caps.name} on one device has local variables: variable_update {value} runs as {mode}"


# ----------------------------------------------------------------------------------------------------- the table

# Declaration order is the order of a setting name's parts (the classic lambdal/cpu_benchmark names first).
AXES: tuple[Axis, ...] = (
    Axis("model", ("model",), source=MODELS, choices_from=model_names, rank=100, help="the network"),
    Axis("batch_size", ("batch_size",), minimum=1, source=MODELS, rank=101, help="images per device per step"),
    Axis("data", ("data_dir", "data_name"), "syn", str, ("syn", "real"), fragment=itself, argv=_data_argv, rank=1,
         applies=_data_applies, help="synthetic data, or real ImageNet-format TFRecords (data_dir or generate_data)"),
    Axis("variable_update", ("variable_update",), "parameter_server", fragment=itself, rank=2,
         runs_as=_update_runs_as, help="how gradients and variables move between devices"),
    Axis("nccl", ("all_reduce_spec", "use_nccl"), False, bool, fragment=word("nccl"), argv=_nccl_argv, rank=3,
         applies=_nccl_applies, help="all-reduce with NCCL"),
    Axis("distortions", ("distortions",), False, fragment=word("distortions"), rank=4,
         help="random flips and colour distortions of real data"),
    Axis("device", ("device",), "cpu", source=TOP, rank=5, applies=_device_applies,
         help="the device type that computes"),
    Axis("num_devices", ("num_gpus",), 1, minimum=1, source=TOP, config_key="num_gpus", fragment=_devices, rank=6,
         applies=_devices_applies, help="devices (logical CPU devices with device: cpu)"),
    # One physical GPU split into num_gpus logical ones: named `-logical` so it never shares a column (or a ratio)
    # with real GPUs; at its default it is left out of names, argv and run hashes, so nothing measured changes.
    Axis("logical_gpus", ("logical_gpus",), False, bool, source=TOP, fragment=word("logical"), argv=_logical_argv,
         rank=16, applies=_logical_applies,
         help="device: gpu with num_gpus N on one card: N logical GPUs (every variable-update path, not real GPUs)"),
    Axis("forward_only", ("forward_only", "eval"), False, fragment=word("inference"), rank=7,
         help="inference only"),
    Axis("xla_compile", ("xla_compile", "xla"), False, fragment=word("xla"), rank=8, applies=_xla_applies,
         help="compile with XLA"),
    Axis("precision", ("precision", "use_fp16"), "fp32", fragment=off_default("{}", "fp32"), rank=9,
         help="compute precision"),
    Axis("num_intra_threads", ("num_intra_threads",), 0, minimum=0, maximum=MAX_THREADS,
         fragment=off_default("intra{}", 0), rank=10, expand=_threads,
         help="threads inside one op; 0 = the framework's default; `all` or `1..N` for a sweep"),
    Axis("num_inter_threads", ("num_inter_threads",), 0, minimum=0, maximum=MAX_THREADS,
         fragment=off_default("inter{}", 0), rank=11,
         help="ops run at once; 0 = the framework's default"),
    Axis("framework", ("framework",), "tensorflow", fragment=off_default("{}", "tensorflow"), rank=12,
         help="which framework runs the declared network: tensorflow, or pytorch (the torch extra)"),
    Axis("execution", ("execution",), "graph", fragment=_execution, rank=13, default_for=_execution_default,
         applies=_execution_applies,
         help="tensorflow: graph (one tf.function), eager (ops one by one) or xla; pytorch: eager, script "
              "(torch.jit) or compile (torch.compile)"),
    Axis("placement", (), "none", str, ("none", "sequential", "interleave"), fragment=off_default("{}", "none"),
         launch=_place, rank=14, help="pin to num_intra_threads cores: the first in socket order, or split over two"),
    Axis("memory", (), "default", str, ("default", "local", "remote"), fragment=off_default("mem{}", "default"),
         launch=_bind, rank=15, help="bind memory to the cores' own NUMA node, or to another one"),
    Axis("allocator", (), "default", str, ("default", "tcmalloc", "jemalloc"), fragment=off_default("{}", "default"),
         launch=_preload, rank=17, help="the allocator preloaded into the engine: glibc's, tcmalloc or jemalloc"),
)  # fmt: skip


def table() -> tuple[Axis, ...]:
    """The axes in force (read at call time, so a test can declare one more)."""
    return AXES


def get(name: str) -> Axis:
    for a in table():
        if a.name == name:
            return a
    raise KeyError(name)


def by_key(key: str) -> Axis | None:
    """The axis a config key names (``num_gpus`` is the device count)."""
    return next((a for a in table() if a.key == key or a.name == key), None)


def matrix_axes() -> list[Axis]:
    """Axes a config's ``matrix:`` may set (batch size too: it overrides the models' batch sizes)."""
    return [a for a in table() if a.source == MATRIX or a.name == "batch_size"]


def top_axes() -> list[Axis]:
    return [a for a in table() if a.source == TOP]


def setting_axes() -> list[Axis]:
    """Axes that tell settings (table columns) apart: all but the model and batch size (table rows)."""
    return [a for a in table() if a.source != MODELS]


def defaults() -> dict[str, Any]:
    return {a.name: a.default for a in table()}


def owned_flags() -> dict[str, str]:
    """Engine flag -> where a config sets it instead, for every flag an axis owns."""
    return {flag: a.where for a in table() for flag in a.flags}


def launch(values: dict[str, Any], topo: Any) -> Launch:
    """How to start the child of a run on the host ``topo`` describes (a :class:`cpubench.host.topology.Topology`),
    from every axis that decides it (in declaration order: placement, then memory). Reads nothing: raises
    topology.NotApplicable for a value that host cannot give (interleave on one socket, remote memory on one NUMA
    node), topology.PlacementError for more threads than cores, topology.TopologyError when an axis needs a host and
    ``topo`` is None."""
    out = Launch()
    for a in table():
        if a.launch is not None:
            value = values.get(a.name, a.default)
            if value == a.default:
                continue
            if topo is None:
                from cpubench.host import topology

                raise topology.TopologyError(f"{a.where}: {value} needs the host's topology; none was given")
            out = a.launch(value, values, out, topo)
    return out


def setting_name(values: dict[str, Any]) -> str:
    """``<data>-<variable_update>[-nccl][-distortions]-<N>cpus|gpus[-logical][-inference][-xla][-bf16][-intra4]...``.

    The classic tables name their columns this way; optional axes appear only off their default, so classic names
    stay as they were and two settings never share a log folder.
    """
    parts = [a.name_part(values.get(a.name), values) for a in setting_axes()]
    return "-".join(p for p in parts if p)


def not_applicable(values: dict[str, Any]) -> str | None:
    """Why this combination of axis values means nothing (the first axis that says so), or None."""
    for a in table():
        if a.applies is not None:
            why = a.applies(values.get(a.name, a.default_in(values)), values)
            if why:
                return why
    return None


def runs_as(values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The values that actually run (each axis's ``runs_as`` applied, in declaration order) and why each changed."""
    out, why = dict(values), []
    for a in table():
        if a.runs_as is not None and a.name in out:
            changed = a.runs_as(out[a.name], out)
            if changed is not None:
                out[a.name] = changed[0]
                why.append(changed[1])
    return out, why


def argv(values: dict[str, Any], ctx: Context) -> list[str]:
    """The engine flags of every axis, in declaration order."""
    return [arg for a in table() for arg in a.to_argv(values.get(a.name, a.default), ctx)]


def identity(values: dict[str, Any]) -> dict[str, Any]:
    """The axis values that identify a measurement (for the run hash). An axis at its default is left out, so
    declaring a new axis reruns nothing measured before it existed (those runs were at its default)."""
    out = {}
    for a in table():
        v = values.get(a.name, a.default)
        if a.identity and (v != a.default_in(values) or a.source == MODELS):
            out[a.name] = v
    return out


def sort_key(params: dict[str, Any]) -> tuple[Any, ...]:
    """Report order of a setting, from its stored axis values (never from its name)."""
    ranked = sorted(setting_axes(), key=lambda a: a.rank)
    return tuple(a.sort_value(params.get(a.name)) for a in ranked)


def settings_params(records: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Setting name -> the axis values of its first record (what the report orders settings by)."""
    out: dict[str, dict[str, Any]] = {}
    for setting, params in records:
        out.setdefault(setting, params)
    return out


def value_problem(name: str, value: Any) -> str | None:
    """Why a stored record's value for axis ``name`` cannot be that axis's (a text where a number goes), or None.

    Reports order, group and plot by these values, so a record that breaks the type is refused when it is read, not
    when a table is half written. None (not known: a legacy log that does not say) and axes this version does not
    declare (a newer one's) pass; so do values outside today's choices (a newer mode), which sort last."""
    axis = next((a for a in table() if a.name == name), None)
    if axis is None or value is None:
        return None
    kind = axis.value_kind
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    return None if ok else f"expected {kind.__name__}, got {value!r}"
