"""Sweep configs: load and validate a YAML matrix, expand it into settings, name them as the classic tables do.

Why validation up front, with line numbers: a config is written once and then run overnight on several hosts. A typo
(``variable_update: replicate``, ``modles:``) found at 3 a.m. by the engine costs a night; found at load time with
``configs/x.yaml:12: matrix.variable_update[1]: ...`` it costs ten seconds.

Why a per-run hash (:func:`run_hash`) rather than one hash of the whole file: resume must skip exactly the runs whose
measurement would be the same. Adding a model to a config must not rerun the others; changing ``num_batches`` or a
flag must rerun everything it touches. The hash covers every engine flag and environment variable that changes the
measurement, and nothing else (not the config name, not the engine's path, not the timeout).
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import itertools
import json
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PACKAGE_CONFIGS = Path(__file__).resolve().parent / "configs"
DEFAULT_CONFIG = "cpu-default"

# Matrix axes: name -> (default, allowed values or a type). Order = order of the setting name's parts.
AXES: dict[str, Any] = {
    "data": ("syn", ("syn", "real")),
    "variable_update": (
        "parameter_server",
        ("parameter_server", "replicated", "independent", "distributed_replicated", "collective_all_reduce"),
    ),
    "nccl": (False, bool),
    "distortions": (False, bool),
    "forward_only": (False, bool),
    "precision": ("fp32", ("fp32", "bf16", "fp16")),
    "xla_compile": (False, bool),
    "num_intra_threads": (0, int),
    "num_inter_threads": (0, int),
    "batch_size": (None, int),
}
# Keys an exclude rule may use: the axes plus what the matrix is crossed with.
EXCLUDE_KEYS = (*AXES, "model", "num_gpus")

# Engine flags the runner sets from the matrix: a config sets them there, never under `flags`.
RUNNER_FLAGS = {
    "model": "models",
    "batch_size": "models (or matrix.batch_size)",
    "num_batches": "num_batches",
    "num_warmup_batches": "num_warmup_batches",
    "device": "device",
    "num_gpus": "num_gpus",
    "variable_update": "matrix.variable_update",
    "all_reduce_spec": "matrix.nccl",
    "use_nccl": "matrix.nccl",
    "forward_only": "matrix.forward_only",
    "eval": "matrix.forward_only",
    "distortions": "matrix.distortions",
    "data_dir": "data_dir and matrix.data",
    "data_name": "matrix.data",
    "result_json": "(the runner sets it)",
    "precision": "matrix.precision",
    "use_fp16": "matrix.precision",
    "xla_compile": "matrix.xla_compile",
    "xla": "matrix.xla_compile",
    "num_intra_threads": "matrix.num_intra_threads",
    "num_inter_threads": "matrix.num_inter_threads",
}

# Upstream tf_cnn_benchmarks model names; the engine's registry adds whatever it declares.
UPSTREAM_MODELS = (
    "trivial", "lenet", "alexnet", "overfeat", "vgg11", "vgg16", "vgg19", "googlenet", "inception3", "inception4",
    "resnet50", "resnet50_v1.5", "resnet50_v2", "resnet101", "resnet101_v2", "resnet152", "resnet152_v2",
    "mobilenet", "nasnet", "nasnetlarge", "densenet40_k12", "densenet100_k12", "densenet100_k24",
)  # fmt: skip

TOP_KEYS = (
    "name", "device", "num_gpus", "repeats", "num_batches", "num_warmup_batches", "timeout", "data_dir",
    "generate_data", "models", "matrix", "exclude", "flags", "env", "engine", "description",
)  # fmt: skip
REQUIRED_KEYS = ("name", "models")


class ConfigError(Exception):
    """A config that cannot be run: the message is ``file:line: key: what is wrong``."""


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
    """A validated config; ``matrix`` values are always lists, ``models`` values lists of batch sizes."""

    name: str
    source: str
    device: str = "cpu"
    num_gpus: list[int] = field(default_factory=lambda: [1])
    repeats: int = 2
    num_batches: int = 100
    num_warmup_batches: int = 10
    timeout: float = 1800.0
    data_dir: str = ""
    generate_data: GenerateData | None = None
    models: dict[str, list[int]] = field(default_factory=dict)
    matrix: dict[str, list[Any]] = field(default_factory=dict)
    exclude: list[dict[str, list[Any]]] = field(default_factory=list)
    flags: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    engine: list[str] | None = None
    description: str = ""


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


# ---------------------------------------------------------------------------------------------------------------
# Loading


def packaged_configs() -> list[str]:
    """Names of the configs shipped with cpubench (usable as ``--config NAME``)."""
    return sorted(p.stem for p in PACKAGE_CONFIGS.glob("*.yaml"))


def resolve_config(name_or_path: str | None) -> Path:
    """A path that exists, or the name of a shipped config (``cpu-default``, ``lambda-4gpu.yaml``)."""
    if not name_or_path:
        name_or_path = DEFAULT_CONFIG
    p = Path(name_or_path).expanduser()
    if p.is_file():
        return p
    stem = p.name[:-5] if p.name.endswith(".yaml") else p.name
    packaged = PACKAGE_CONFIGS / f"{stem}.yaml"
    # A bare name or configs/NAME.yaml (as in the repo, from any folder) falls back to the shipped copy.
    if packaged.is_file() and p.parent in (Path("."), Path("configs")):
        return packaged
    raise ConfigError(f"{name_or_path}: no such config file; shipped configs: {', '.join(packaged_configs())}")


def load_config(name_or_path: str | None = None) -> Config:
    """Load and validate a config file, or the embedded default when none is given."""
    path = resolve_config(name_or_path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from e
    return parse_config(text, str(path))


def parse_config(text: str, source: str = "<config>") -> Config:
    """Parse YAML text into a :class:`Config`; every error names the file, the line and the key."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = f"{mark.line + 1}" if mark is not None else "?"
        what = " ".join(x for x in (e.context, e.problem) if x)
        raise ConfigError(f"{source}:{line}: not valid YAML: {what}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: not valid YAML: {e}") from None
    if node is None:
        raise ConfigError(f"{source}:1: empty config; it needs at least `name:` and `models:`")
    lines: dict[tuple[Any, ...], int] = {}
    _map_lines(node, (), lines, source, yaml.SafeLoader(""))
    data = yaml.safe_load(text)
    return _Validator(source, lines).config(data)


def _map_lines(
    node: yaml.Node, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int], source: str, loader: yaml.SafeLoader
) -> None:
    """Record the line of every key and item, and reject duplicate keys (YAML would silently keep the last one)."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for knode, vnode in node.value:
            key = loader.construct_object(knode) if isinstance(knode, yaml.ScalarNode) else str(knode.value)
            line = knode.start_mark.line + 1
            if key in seen:
                where = ".".join(str(p) for p in (*path, key))
                raise ConfigError(f"{source}:{line}: {where}: duplicate key (first at line {seen[key]})")
            seen[key] = line
            lines[(*path, key)] = line
            _map_lines(vnode, (*path, key), lines, source, loader)
            lines[(*path, key)] = line
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _map_lines(item, (*path, i), lines, source, loader)


class _Validator:
    """Checks a parsed YAML document key by key; errors point at the offending line."""

    def __init__(self, source: str, lines: dict[tuple[Any, ...], int]) -> None:
        self.source = source
        self.lines = lines

    def error(self, path: tuple[Any, ...], msg: str) -> ConfigError:
        p = path
        while p not in self.lines and p:
            p = p[:-1]
        line = self.lines.get(p, 1)
        where = ""
        for part in path:
            where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
        return ConfigError(f"{self.source}:{line}: {where or '(top)'}: {msg}")

    # -- scalar checks

    def int_(self, v: Any, path: tuple[Any, ...], minimum: int = 0) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.error(path, f"expected an integer, got {v!r}")
        if v < minimum:
            raise self.error(path, f"must be at least {minimum}, got {v}")
        return v

    def str_(self, v: Any, path: tuple[Any, ...]) -> str:
        if not isinstance(v, str) or not v.strip():
            raise self.error(path, f"expected a non-empty string, got {v!r}")
        return v

    def choice(self, v: Any, path: tuple[Any, ...], choices: tuple[Any, ...]) -> Any:
        if v not in choices or isinstance(v, bool) != isinstance(choices[0], bool):
            close = difflib.get_close_matches(str(v), [str(c) for c in choices], 1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise self.error(path, f"{v!r} is not one of {', '.join(str(c) for c in choices)}{hint}")
        return v

    def axis_value(self, axis: str, v: Any, path: tuple[Any, ...]) -> Any:
        _default, kind = AXES[axis]
        if kind is bool:
            if not isinstance(v, bool):
                raise self.error(path, f"expected true or false, got {v!r}")
            return v
        if kind is int:
            return self.int_(v, path, 1 if axis == "batch_size" else 0)
        return self.choice(v, path, kind)

    def listed(self, v: Any, path: tuple[Any, ...]) -> list[Any]:
        """A scalar or a non-empty list of scalars, as a list."""
        if isinstance(v, list):
            if not v:
                raise self.error(path, "empty list: give at least one value")
            return v
        if isinstance(v, dict):
            raise self.error(path, "expected a value or a list of values, got a mapping")
        return [v]

    def mapping(self, v: Any, path: tuple[Any, ...]) -> dict[Any, Any]:
        if not isinstance(v, dict):
            raise self.error(path, f"expected a mapping (key: value), got {type(v).__name__}")
        return v

    def unknown(self, key: Any, path: tuple[Any, ...], known: tuple[str, ...] | list[str], what: str) -> ConfigError:
        close = difflib.get_close_matches(str(key), list(known), 1)
        hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(known)}"
        return self.error((*path, key), f"unknown {what} {key!r}; {hint}")

    # -- the document

    def config(self, data: Any) -> Config:
        top = self.mapping(data, ())
        for key in top:
            if key not in TOP_KEYS:
                raise self.unknown(key, (), TOP_KEYS, "key")
        for key in REQUIRED_KEYS:
            if key not in top:
                raise self.error((), f"missing required key `{key}`")
        c = Config(name=self.str_(top["name"], ("name",)), source=self.source)
        if "description" in top:
            c.description = str(top["description"])
        if "device" in top:
            c.device = self.choice(top["device"], ("device",), ("cpu", "gpu"))
        if "num_gpus" in top:
            raw = top["num_gpus"]
            vals = self.listed(raw, ("num_gpus",))
            c.num_gpus = [self.int_(v, _item(raw, ("num_gpus",), i), 1) for i, v in enumerate(vals)]
        for key, minimum in (("repeats", 1), ("num_batches", 1), ("num_warmup_batches", 0)):
            if key in top:
                setattr(c, key, self.int_(top[key], (key,), minimum))
        if "timeout" in top:
            t = top["timeout"]
            if isinstance(t, bool) or not isinstance(t, (int, float)) or t <= 0:
                raise self.error(("timeout",), f"expected seconds > 0, got {t!r}")
            c.timeout = float(t)
        if "data_dir" in top and top["data_dir"] is not None:
            c.data_dir = self.str_(top["data_dir"], ("data_dir",))
        if "generate_data" in top and top["generate_data"] is not None:
            g = self.mapping(top["generate_data"], ("generate_data",))
            for key in g:
                if key not in ("count", "size"):
                    raise self.unknown(key, ("generate_data",), ("count", "size"), "key")
            if "count" not in g:
                raise self.error(("generate_data",), "missing `count` (number of images to generate)")
            size = g.get("size", "")
            if isinstance(size, int) and not isinstance(size, bool):
                size = str(self.int_(size, ("generate_data", "size"), 8))
            elif not isinstance(size, str) or (size and not re.fullmatch(r"\d+x\d+", size)):
                raise self.error(("generate_data", "size"), f"expected pixels (64) or WxH (500x375), got {size!r}")
            c.generate_data = GenerateData(count=self.int_(g["count"], ("generate_data", "count"), 1), size=size)
        c.models = self.models(top["models"])
        c.matrix = self.matrix(top.get("matrix") or {})
        c.exclude = self.exclude(top.get("exclude") or [], set(c.models))
        c.flags = self.flags(top.get("flags") or {})
        c.env = self.env(top.get("env") or {})
        if "engine" in top and top["engine"] is not None:
            c.engine = self.engine(top["engine"])
        if "real" in c.matrix.get("data", []) and not c.data_dir and c.generate_data is None:
            raise self.error(("matrix", "data"), "real data needs `data_dir:` or `generate_data: {count: N}`")
        return c

    def models(self, v: Any) -> dict[str, list[int]]:
        path = ("models",)
        m = self.mapping(v, path)
        if not m:
            raise self.error(path, "no models: give at least one `name: batch_size`")
        known = known_models()
        out: dict[str, list[int]] = {}
        for name, batches in m.items():
            if str(name) not in known:
                raise self.unknown(name, path, known, "model")
            vals = self.listed(batches, (*path, name))
            out[str(name)] = [self.int_(b, _item(batches, (*path, name), i), 1) for i, b in enumerate(vals)]
        return out

    def matrix(self, v: Any) -> dict[str, list[Any]]:
        m = self.mapping(v, ("matrix",))
        out: dict[str, list[Any]] = {}
        for axis, vals in m.items():
            if axis not in AXES:
                raise self.unknown(axis, ("matrix",), tuple(AXES), "matrix axis")
            items = self.listed(vals, ("matrix", axis))
            out[axis] = [self.axis_value(axis, x, _item(vals, ("matrix", axis), i)) for i, x in enumerate(items)]
            if len(set(map(repr, out[axis]))) != len(out[axis]):
                raise self.error(("matrix", axis), "a value is listed twice")
        return out

    def exclude(self, v: Any, models: set[str]) -> list[dict[str, list[Any]]]:
        if not isinstance(v, list):
            raise self.error(("exclude",), "expected a list of rules like `- {data: syn, distortions: true}`")
        rules = []
        for i, rule in enumerate(v):
            r = self.mapping(rule, ("exclude", i))
            if not r:
                raise self.error(("exclude", i), "empty rule would exclude every run")
            out: dict[str, list[Any]] = {}
            for key, vals in r.items():
                path = ("exclude", i, key)
                if key not in EXCLUDE_KEYS:
                    raise self.unknown(key, ("exclude", i), EXCLUDE_KEYS, "exclude key")
                items = self.listed(vals, path)
                if key == "model":
                    for x in items:
                        if x not in models:
                            raise self.error(path, f"model {x!r} is not in `models`")
                    out[key] = items
                elif key == "num_gpus":
                    out[key] = [self.int_(x, path, 1) for x in items]
                else:
                    out[key] = [self.axis_value(key, x, path) for x in items]
            rules.append(out)
        return rules

    def flags(self, v: Any) -> dict[str, Any]:
        from tf_cnn_benchmarks import flags as engine_flags

        m = self.mapping(v, ("flags",))
        known = engine_flags.known_flags()
        out: dict[str, Any] = {}
        for name, value in m.items():
            path = ("flags", name)
            if name not in known:
                raise self.unknown(name, ("flags",), known, "engine flag")
            if name in RUNNER_FLAGS:
                raise self.error(path, f"set by the runner; use `{RUNNER_FLAGS[name]}` instead of flags.{name}")
            if isinstance(value, (dict, list)) or value is None:
                raise self.error(path, f"expected a single value, got {value!r}")
            try:
                engine_flags.parse([f"--{name}={flag_value(value)}"])
            except engine_flags.FlagError as e:
                raise self.error(path, str(e)) from None
            out[str(name)] = value
        return out

    def env(self, v: Any) -> dict[str, str]:
        m = self.mapping(v, ("env",))
        out: dict[str, str] = {}
        for k, val in m.items():
            if isinstance(val, (dict, list)) or val is None:
                raise self.error(("env", k), f"expected a single value, got {val!r}")
            out[str(k)] = flag_value(val)
        return out

    def engine(self, v: Any) -> list[str]:
        if isinstance(v, str):
            argv = shlex.split(v)
        elif isinstance(v, list) and all(isinstance(x, str) for x in v):
            argv = list(v)
        else:
            raise self.error(("engine",), "expected a command line (string or list of strings)")
        if not argv:
            raise self.error(("engine",), "empty engine command")
        return argv


def _item(raw: Any, path: tuple[Any, ...], i: int) -> tuple[Any, ...]:
    """Path of the i-th value: ``key[i]`` when the YAML gave a list, ``key`` when it gave one scalar."""
    return (*path, i) if isinstance(raw, list) else path


def known_models() -> list[str]:
    """Model names the config accepts: the engine registry's (cheap, no TensorFlow) plus upstream's names."""
    names = list(UPSTREAM_MODELS)
    try:
        from tf_cnn_benchmarks.models import registry

        names += [n for n in registry.names() if n not in names]
    except Exception:  # noqa: BLE001 - a half-written engine must not make every config unloadable
        pass
    return names


def flag_value(v: Any) -> str:
    """How a YAML value is spelled on the engine command line (booleans lower-case, as absl writes them)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


# ---------------------------------------------------------------------------------------------------------------
# Expansion


def setting_name(params: dict[str, Any]) -> str:
    """``<data>-<variable_update>[-nccl][-distortions]-<N>gpus|cpus[-inference]`` plus non-default extras.

    The classic tables name their columns this way; the extras (``-xla``, ``-bf16``, ``-intra4``, ``-inter2``)
    appear only when an optional axis is off its default, so the classic names stay as they were and two settings
    never share a log folder.
    """
    parts = [params["data"], params["variable_update"]]
    if params.get("nccl"):
        parts.append("nccl")
    if params.get("distortions"):
        parts.append("distortions")
    unit = "cpus" if params.get("device", "cpu") == "cpu" else "gpus"
    parts.append(f"{params['num_devices']}{unit}")
    if params.get("forward_only"):
        parts.append("inference")
    if params.get("xla_compile"):
        parts.append("xla")
    if params.get("precision", "fp32") != "fp32":
        parts.append(params["precision"])
    if params.get("num_intra_threads"):
        parts.append(f"intra{params['num_intra_threads']}")
    if params.get("num_inter_threads"):
        parts.append(f"inter{params['num_inter_threads']}")
    return "-".join(str(p) for p in parts)


def _excluded(values: dict[str, Any], rules: list[dict[str, list[Any]]]) -> bool:
    """A rule excludes a combination when every key it names matches (a list in a rule means any of them)."""

    def hit(v: Any, xs: list[Any]) -> bool:
        return any(v == x and type(v) is type(x) for x in xs)

    return any(all(k in values and hit(values[k], xs) for k, xs in rule.items()) for rule in rules)


def plan(config: Config, repeats: int | None = None) -> list[Planned]:
    """Every run of the config, repeats outermost: a sweep cut short still has every setting measured once."""
    axes = [a for a in AXES if a != "batch_size"]
    grids = [config.matrix.get(a, [AXES[a][0]]) for a in axes]
    runs_per_repeat: list[tuple[Setting, str, int]] = []
    for n in config.num_gpus:
        for combo in itertools.product(*grids):
            values = dict(zip(axes, combo, strict=True))
            params = {
                "data": values["data"],
                "variable_update": values["variable_update"],
                "nccl": values["nccl"],
                "distortions": values["distortions"],
                "forward_only": values["forward_only"],
                "device": config.device,
                "num_devices": n,
                "num_intra_threads": values["num_intra_threads"],
                "num_inter_threads": values["num_inter_threads"],
                "precision": values["precision"],
                "xla_compile": values["xla_compile"],
                "data_generated": False,
            }
            setting = Setting(setting_name(params), params)
            for model, model_batches in config.models.items():
                for bs in config.matrix.get("batch_size", model_batches):
                    full = {**values, "model": model, "num_gpus": n, "batch_size": bs}
                    if not _excluded(full, config.exclude):
                        runs_per_repeat.append((setting, model, bs))
    n_rep = config.repeats if repeats is None else repeats
    return [Planned(s, m, b, r) for r in range(n_rep) for (s, m, b) in runs_per_repeat]


def settings(config: Config) -> list[str]:
    """The distinct setting names of a config, in plan order."""
    return list(dict.fromkeys(p.setting.name for p in plan(config, repeats=1)))


def engine_flags(config: Config, run: Planned, data_dir: str) -> list[str]:
    """The engine flags of one run (without ``--result_json``), in a stable order."""
    p = run.setting.params
    argv = [
        f"--model={run.model}",
        f"--batch_size={run.batch_size}",
        f"--num_batches={config.num_batches}",
        f"--num_warmup_batches={config.num_warmup_batches}",
        f"--device={p['device']}",
        f"--num_gpus={p['num_devices']}",
        f"--variable_update={p['variable_update']}",
        f"--all_reduce_spec={'nccl' if p['nccl'] else ''}",
        f"--forward_only={flag_value(p['forward_only'])}",
        f"--distortions={flag_value(p['distortions'])}",
        f"--precision={p['precision']}",
        f"--xla_compile={flag_value(p['xla_compile'])}",
        f"--num_intra_threads={p['num_intra_threads']}",
        f"--num_inter_threads={p['num_inter_threads']}",
    ]
    if p["data"] == "real":
        argv += [f"--data_dir={data_dir}", "--data_name=imagenet"]
    argv += [f"--{k}={flag_value(v)}" for k, v in sorted(config.flags.items())]
    return argv


def run_hash(config: Config, run: Planned, data_source: dict[str, Any]) -> str:
    """Hash of what determines one measurement: engine flags, data source and environment (not paths, not names).

    ``data_source`` describes the real data (``{"dir": "~/data/x"}`` or ``{"generated": {...}}``) so that moving
    from generated images to a real data set reruns the real-data settings, while the same data at another mount
    point would too only if the config's ``data_dir`` text changed.
    """
    flags = [f for f in engine_flags(config, run, "") if not f.startswith(("--data_dir=", "--batch_size=", "--model="))]
    content = {
        "flags": flags,
        "data": data_source if run.setting.params["data"] == "real" else None,
        "env": sorted(config.env.items()),
    }
    blob = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def matches(run: Planned, patterns: list[str]) -> bool:
    """``--only`` globs match the setting, the model, or ``setting/model-bs<k>`` (e.g. ``syn-*/resnet50-*``)."""
    full = f"{run.setting.name}/{run.model}-bs{run.batch_size}"
    return any(fnmatch.fnmatchcase(x, pat) for pat in patterns for x in (run.setting.name, run.model, full))


def expand_data_dir(path: str) -> str:
    """``~`` and environment variables in ``data_dir`` are expanded on the host that runs the sweep."""
    return os.path.expandvars(os.path.expanduser(path)) if path else ""
