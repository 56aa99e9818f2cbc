"""Sweep configs: load a YAML matrix and validate it against the axis declarations, reading nothing of the host.

What may be swept, and how each axis is checked, spelled on the command line and named, is declared once in
:mod:`cpubench.spec.axes`; this module applies those declarations to a YAML document.

Why validation up front, with line numbers: a config is written once and then run overnight on several hosts. A typo
(``variable_update: replicate``, ``modles:``) found at 3 a.m. by the engine costs a night; found at load time with
``configs/x.yaml:12: matrix.variable_update[1]: ...`` it costs ten seconds.

Why no host at load: a config may be loaded on one machine and run on others (``cpubench fleet``). Everything that
can be checked without a host is checked here (``all`` and ``A..B`` syntax, a thread count for a pinned placement);
what needs one (``all``, too many threads for a placement) is settled by :func:`cpubench.spec.plan.resolve`.

The rest of a sweep's spec lives beside this module and is importable from it, as it always was: the types
(:mod:`cpubench.spec.schema`), the plan (:mod:`cpubench.spec.plan`) and the run identity
(:mod:`cpubench.spec.identity`).
"""

from __future__ import annotations

import difflib
import math
import os
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from cpubench.spec import axes, bounded
from cpubench.spec.identity import engine_flags, engine_for, run_hash, run_hash_v1, run_identity
from cpubench.spec.plan import (
    check_plan_size,
    launch,
    left_out,
    matches,
    needs_host,
    plan,
    plan_notes,
    resolve,
    runs_as,
    setting_name,
    settings,
)
from cpubench.spec.schema import Config, ConfigError, GenerateData, OnHost, Planned, Setting, located
from tf_cnn_benchmarks.data.make import MAX_GENERATE

# Importable from here as before the split (the runner, the planner, the tests use cfg.<name>).
__all__ = [
    "Config", "ConfigError", "GenerateData", "OnHost", "Planned", "Setting", "check_plan_size", "engine_flags",
    "engine_for",
    "expand_data_dir", "launch", "left_out", "load_config", "matches", "needs_host", "packaged_configs",
    "parse_config", "plan", "plan_notes", "resolve", "resolve_config", "run_hash", "run_hash_v1", "run_identity",
    "runner_flags", "runs_as", "setting_name", "settings",
]  # fmt: skip

PACKAGE_CONFIGS = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_CONFIG = "cpu-default"

TOP_KEYS = (
    "name", "repeats", "num_batches", "num_warmup_batches", "timeout", "data_dir", "generate_data", "models",
    "matrix", "exclude", "flags", "env", "engine", "description", "batches_per_process",
)  # fmt: skip
REQUIRED_KEYS = ("name", "models")
# Engine flags the runner sets from the config's scalars (the axes own the rest).
SCALAR_FLAGS = {"num_batches": "num_batches", "num_warmup_batches": "num_warmup_batches",
                "result_json": "(the runner sets it)"}  # fmt: skip
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Limits on what a config lists, checked before anything is expanded (the plan's own bound is plan.MAX_RUNS).
MAX_VALUES = 4096  # values of one axis or one model's batch sizes: as many as the most threads an axis may ask
MAX_EXCLUDE = 256  # exclude rules: each is matched against every run of the plan
MAX_ENV = 256  # environment variables a config sets for its children
MAX_ENV_VALUE = 32 << 10  # one variable's value (Linux refuses a single one over 128 KiB at exec)


def top_keys() -> tuple[str, ...]:
    """Top-level keys a config may have: the fixed ones and the axes set at the top (device, num_gpus)."""
    return (*TOP_KEYS[:1], *(a.key for a in axes.top_axes()), *TOP_KEYS[1:])


def runner_flags() -> dict[str, str]:
    """Engine flag -> where a config sets it: a config sets these there, never under ``flags:``."""
    return {**axes.owned_flags(), **SCALAR_FLAGS}


def exclude_keys() -> tuple[str, ...]:
    """Keys an exclude rule may use: every axis (by its config key)."""
    return tuple(a.key for a in axes.table())


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
    """Load and validate a config file, or the embedded default when none is given.

    At most :data:`bounded.MAX_BYTES` are read (one more to tell a larger file), so a huge file or a device that
    never ends (``/dev/zero``) is one line, not a machine out of memory."""
    path = resolve_config(name_or_path)
    try:
        with path.open("rb") as f:
            data = f.read(bounded.MAX_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from e
    return parse_config(bounded.decode(data, str(path)), str(path))


def parse_config(text: str, source: str = "<config>") -> Config:
    """Parse YAML text into a :class:`Config`; every error names the file, the line and the key.

    The document is composed under the bounds of :mod:`cpubench.spec.bounded` (no aliases, no tags beyond plain
    values, bounded depth, size and node count) and constructed from those same nodes, never parsed a second time
    by an unbounded loader; list lengths, ranges and the plan's size are checked before anything is expanded."""
    node, loader = bounded.compose(text, source)
    if node is None:
        raise ConfigError(f"{source}:1: empty config; it needs at least `name:` and `models:`")
    lines: dict[tuple[Any, ...], int] = {}
    _map_lines(node, (), lines, source, loader)
    data = bounded.construct(node, loader, source)
    config = _Validator(source, lines).config(data)
    check_plan_size(config)
    return config


def _map_lines(
    node: yaml.Node, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int], source: str, loader: yaml.BaseLoader
) -> None:
    """Record the line of every key and item, and reject duplicate keys (YAML would silently keep the last one)."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for knode, vnode in node.value:
            key = loader.construct_object(knode)  # a scalar: bounded.compose refuses any other key
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
        return located(self.source, self.lines, path, msg)

    # -- scalar checks

    def int_(self, v: Any, path: tuple[Any, ...], minimum: int | None = 0, maximum: int | None = None) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.error(path, f"expected an integer, got {v!r}")
        if minimum is not None and v < minimum:
            raise self.error(path, f"must be at least {minimum}, got {v}")
        if maximum is not None and v > maximum:
            raise self.error(path, f"must be at most {maximum}, got {v:,}")
        return v

    def str_(self, v: Any, path: tuple[Any, ...]) -> str:
        if not isinstance(v, str) or not v.strip():
            raise self.error(path, f"expected a non-empty string, got {v!r}")
        if not v.isprintable():  # a name is printed on terminals and written into every record: text, no controls
            raise self.error(path, f"{v!r} holds control characters: write it as plain text")
        return v

    def choice(self, v: Any, path: tuple[Any, ...], choices: tuple[Any, ...]) -> Any:
        if v not in choices or isinstance(v, bool) != isinstance(choices[0], bool):
            close = difflib.get_close_matches(str(v), [str(c) for c in choices], 1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise self.error(path, f"{v!r} is not one of {', '.join(str(c) for c in choices)}{hint}")
        return v

    def axis_value(self, axis: axes.Axis, v: Any, path: tuple[Any, ...]) -> Any:
        """A value of an axis, checked against its declaration (type, minimum, allowed values)."""
        kind = axis.value_kind
        if kind is bool:
            if not isinstance(v, bool):
                raise self.error(path, f"expected true or false, got {v!r}")
            return v
        if kind is int:
            return self.int_(v, path, axis.minimum, axis.maximum)
        if kind is float:
            return self.number(v, path)
        allowed = axis.allowed
        if allowed is None:
            return self.str_(v, path)
        if axis.name == "model" and v not in allowed:
            close = difflib.get_close_matches(str(v), [str(c) for c in allowed], 1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise self.error(path, f"unknown model {v!r}; {hint}the engine declares: {', '.join(allowed)}")
        return self.choice(v, path, allowed)

    def number(self, v: Any, path: tuple[Any, ...], positive: bool = False, what: str = "") -> float:
        """A finite number (YAML's .nan and .inf are refused: a NaN timeout would never fire)."""
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or (positive and v <= 0):
            what = what or ("a finite number > 0" if positive else "a finite number")
            raise self.error(path, f"expected {what}, got {v!r}")
        return float(v)

    def listed(self, v: Any, path: tuple[Any, ...]) -> list[Any]:
        """A scalar or a non-empty list of at most :data:`MAX_VALUES` scalars, as a list."""
        if isinstance(v, list):
            if not v:
                raise self.error(path, "empty list: give at least one value")
            if len(v) > MAX_VALUES:
                raise self.error(path, f"{len(v):,} values: a list may hold at most {MAX_VALUES:,}")
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
        known_top = top_keys()
        for key in top:
            if key not in known_top:
                raise self.unknown(key, (), known_top, "key")
        for key in REQUIRED_KEYS:
            if key not in top:
                raise self.error((), f"missing required key `{key}`")
        c = Config(name=self.str_(top["name"], ("name",)), source=self.source, lines=self.lines)
        if "description" in top:
            c.description = str(top["description"])
            if not c.description.replace("\n", " ").replace("\t", " ").isprintable():
                raise self.error(("description",), "holds control characters: write it as plain text")
        for axis in axes.top_axes():
            if axis.key in top:
                raw = top[axis.key]
                vals = self.listed(raw, (axis.key,))
                c.top[axis.name] = [self.axis_value(axis, v, _item(raw, (axis.key,), i)) for i, v in enumerate(vals)]
        for key, minimum in (("repeats", 1), ("num_batches", 1), ("num_warmup_batches", 0)):
            if key in top:
                setattr(c, key, self.int_(top[key], (key,), minimum))
        if "timeout" in top:
            c.timeout = self.number(top["timeout"], ("timeout",), positive=True, what="seconds > 0")
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
            count = self.int_(g["count"], ("generate_data", "count"), 1, MAX_GENERATE)  # make-data's own bound
            c.generate_data = GenerateData(count=count, size=size)
        c.models = self.models(top["models"])
        c.matrix = self.matrix(top.get("matrix") or {})
        c.exclude = self.exclude(top.get("exclude") or [], set(c.models))
        c.flags = self.flags(top.get("flags") or {})
        c.env = self.env(top.get("env") or {})
        if "engine" in top and top["engine"] is not None:
            c.engine = self.engine(top["engine"])
        if "batches_per_process" in top:
            v = top["batches_per_process"]
            if not isinstance(v, bool):
                raise self.error(("batches_per_process",), f"expected true or false, got {v!r}")
            if v and (c.matrix.get("forward_only") != [True] or c.matrix.get("data", ["syn"]) != ["syn"]):
                raise self.error(
                    ("batches_per_process",),
                    "measures inference on synthetic data: needs matrix.forward_only: [true] and no real data",
                )
            c.batches_per_process = v
        if "real" in c.matrix.get("data", []) and not c.data_dir and c.generate_data is None:
            raise self.error(("matrix", "data"), "real data needs `data_dir:` or `generate_data: {count: N}`")
        return c

    def models(self, v: Any) -> dict[str, list[int]]:
        path = ("models",)
        m = self.mapping(v, path)
        if not m:
            raise self.error(path, "no models: give at least one `name: batch_size`")
        model_axis, batch_axis = axes.get("model"), axes.get("batch_size")
        out: dict[str, list[int]] = {}
        for name, batches in m.items():
            self.axis_value(model_axis, name, (*path, name))
            vals = self.listed(batches, (*path, name))
            out[str(name)] = [
                self.axis_value(batch_axis, b, _item(batches, (*path, name), i)) for i, b in enumerate(vals)
            ]
        return out

    def matrix(self, v: Any) -> dict[str, list[Any]]:
        m = self.mapping(v, ("matrix",))
        known = {a.key: a for a in axes.matrix_axes()}
        out: dict[str, list[Any]] = {}
        for key, vals in m.items():
            axis = known.get(key)
            if axis is None:
                other = axes.by_key(str(key))
                if other is not None:
                    raise self.error(("matrix", key), f"not a matrix axis; set it as `{other.where}`")
                raise self.unknown(key, ("matrix",), tuple(known), "matrix axis")
            items = self.listed(vals, ("matrix", key))
            values: list[Any] = []
            for i, x in enumerate(items):
                path = _item(vals, ("matrix", key), i)
                if isinstance(x, str) and axis.expand is not None and axis.value_kind is not str:
                    try:
                        expanded = axis.expand(x, None)  # no host here: `all` waits for one (plan.resolve)
                    except ValueError as e:
                        raise self.error(path, str(e)) from None
                    values.extend([OnHost(x.strip(), path)] if expanded is None else expanded)
                else:
                    values.append(self.axis_value(axis, x, path))
            out[axis.name] = values
            if len(set(map(repr, out[axis.name]))) != len(out[axis.name]):
                raise self.error(("matrix", key), "a value is listed twice")
        self.placements(out)
        return out

    def placements(self, matrix: dict[str, list[Any]]) -> None:
        """A pinned placement needs a thread count per run; whether a host's cores can give it is for
        :func:`cpubench.spec.plan.resolve` to say, against that host."""
        if not any(p != "none" for p in matrix.get("placement", [])):
            return
        threads = matrix.get("num_intra_threads", [0])
        if any(not isinstance(t, OnHost) and t < 1 for t in threads):
            raise self.error(
                ("matrix", "placement"),
                "a pinned placement needs matrix.num_intra_threads of 1 or more (the cores to pin to)",
            )

    def exclude(self, v: Any, models: set[str]) -> list[dict[str, list[Any]]]:
        if not isinstance(v, list):
            raise self.error(("exclude",), "expected a list of rules like `- {data: syn, distortions: true}`")
        if len(v) > MAX_EXCLUDE:
            what = f"{len(v):,} rules: at most {MAX_EXCLUDE} (each is matched against every run)"
            raise self.error(("exclude",), what)
        rules = []
        for i, rule in enumerate(v):
            r = self.mapping(rule, ("exclude", i))
            if not r:
                raise self.error(("exclude", i), "empty rule would exclude every run")
            out: dict[str, list[Any]] = {}
            for key, vals in r.items():
                path = ("exclude", i, key)
                axis = axes.by_key(str(key))
                if axis is None:
                    raise self.unknown(key, ("exclude", i), exclude_keys(), "exclude key")
                items = self.listed(vals, path)
                if axis.name == "model":
                    for x in items:
                        if x not in models:
                            raise self.error(path, f"model {x!r} is not in `models`")
                    out[axis.name] = items
                else:
                    out[axis.name] = [self.axis_value(axis, x, path) for x in items]
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
            owned = runner_flags()
            if name in owned:
                raise self.error(path, f"set by the runner; use `{owned[name]}` instead of flags.{name}")
            if isinstance(value, (dict, list)) or value is None:
                raise self.error(path, f"expected a single value, got {value!r}")
            try:
                engine_flags.parse([f"--{name}={axes.flag_value(value)}"])
            except engine_flags.FlagError as e:
                raise self.error(path, str(e)) from None
            out[str(name)] = value
        return out

    def env(self, v: Any) -> dict[str, str]:
        """The children's extra environment. It is recorded with every run (the run record's ``env``) and enters the
        run hash, so a variable whose name says it holds a credential is refused here rather than published in
        every results folder (``hostfacts.is_secret``: token, secret, password, key, auth...)."""
        from tf_cnn_benchmarks import hostfacts  # no TensorFlow import

        m = self.mapping(v, ("env",))
        if len(m) > MAX_ENV:
            raise self.error(("env",), f"{len(m):,} variables: a config may set at most {MAX_ENV}")
        out: dict[str, str] = {}
        for k, val in m.items():
            if not isinstance(k, str) or not _ENV_NAME.fullmatch(k):
                raise self.error(
                    ("env", k), f"{k!r} is not an environment variable name (letters, digits and _, not first a digit)"
                )
            if hostfacts.is_secret(k):
                raise self.error(
                    ("env", k),
                    "the name says it holds a credential, and a config's env is recorded in every result "
                    "(and its run hash): set credentials in the environment outside the config",
                )
            if isinstance(val, (dict, list)) or val is None:
                raise self.error(("env", k), f"expected a single value, got {val!r}")
            if isinstance(val, float) and not math.isfinite(val):
                raise self.error(("env", k), f"expected a finite number or text, got {val!r}")
            text = axes.flag_value(val)
            if "\0" in text:
                raise self.error(("env", k), "a value cannot hold a NUL byte")
            if len(text) > MAX_ENV_VALUE:
                raise self.error(("env", k), f"a value of {len(text):,} characters (at most {MAX_ENV_VALUE:,})")
            out[k] = text
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


def expand_data_dir(path: str) -> str:
    """``~`` and environment variables in ``data_dir`` are expanded on the host that runs the sweep."""
    return os.path.expandvars(os.path.expanduser(path)) if path else ""
