"""A config's plan: resolved against a host, expanded into settings and runs, with what it leaves out and why.

Why resolving is a step of its own: a config is loaded on one machine and may run on others (``cpubench fleet``), so
loading reads nothing of the machine. What depends on a host, ``num_intra_threads: all`` (the cores of one socket)
and whether a pinned placement can give that many threads, is settled by :func:`resolve` against the
:class:`cpubench.host.topology.Topology` of the host that will run it: ``cpubench run`` passes this host's
(``Topology.read``), a fleet worker its own. A mistake found then is still told at the config's line.

Why the plan leaves combinations out: a sweep crosses every axis, and some crossings mean nothing for a framework
(pytorch with graph execution, with two devices, with NCCL; see :mod:`cpubench.spec.frameworks`). They are left out
before anything starts, counted by reason (:func:`left_out`), and a crossing that runs as another value (pytorch on
one device runs every variable update as parameter_server) is planned, named and measured as what runs, once.
"""

from __future__ import annotations

import fnmatch
import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from cpubench.host import topology as topo_mod
from cpubench.spec import axes
from cpubench.spec.schema import Config, OnHost, Planned, Setting

# Axes whose values only mean something against a host: they make a config need a topology.
_HOST_AXES = ("placement", "memory")
# The most runs a plan may have (settings x model batch sizes x repeats), checked before it is expanded. The
# shipped configs plan 30 to about 1,000; at ten seconds a run (an engine's start alone) 100,000 is eleven days,
# and expanding it (with every exclude rule matched against every run) still takes about a second.
MAX_RUNS = 100_000


def needs_host(config: Config) -> bool:
    """Whether resolving the config needs a host's topology: ``all`` threads, a pinned placement, bound memory."""
    if config.on_host():
        return True
    return any(v != axes.get(name).default for name in _HOST_AXES for v in config.matrix.get(name, []))


def resolve(config: Config, topology: topo_mod.Topology | Callable[[], topo_mod.Topology]) -> Config:
    """The config bound to a host: ``all`` expanded to the host's cores, pinned placements checked against them, and
    ``topology`` kept on the copy returned (its runs' cores are chosen from it: :func:`launch`).

    ``topology`` is the host's topology, or a function that reads it (``Topology.read`` for this host), called only
    when the config needs one. Raises ConfigError at the config's line for more threads than a placement can give
    there, or a topology that cannot be read. A placement that means nothing on that host (interleave on one socket)
    is no error: its runs are recorded n/a with the reason. A config already resolved is returned as it is when
    given a reader or the same topology; against another host it is refused (its ``all`` was the first host's).
    """
    if config.topology is not None:
        if callable(topology) or topology == config.topology:
            return config
        raise ValueError(f"{config.source}: already resolved against another host's topology; resolve the loaded one")
    if callable(topology):
        if not needs_host(config):
            return config
        try:
            topology = topology()
        except topo_mod.TopologyError as e:
            path = next((v.path for v in config.on_host()), ("matrix", "placement"))
            raise config.error(path, f"cannot read this host's topology: {e}") from None
    matrix: dict[str, list[Any]] = {}
    for name, values in config.matrix.items():
        axis = axes.get(name)
        out: list[Any] = []
        for v in values:
            if not isinstance(v, OnHost):
                out.append(v)
                continue
            assert axis.expand is not None, name  # only an axis that expands text keeps a value for a host
            try:
                out.extend(axis.expand(v.text, topology) or [])
            except ValueError as e:
                raise config.error(v.path, str(e)) from None
        if len(set(map(repr, out))) != len(out):
            raise config.error(("matrix", axis.key), "a value is listed twice")
        matrix[name] = out
    resolved = replace(config, matrix=matrix, topology=topology)
    check_plan_size(resolved)
    _check_placements(resolved, topology)
    return resolved


def check_plan_size(config: Config, repeats: int | None = None) -> None:
    """Refuse a plan of more than :data:`MAX_RUNS` runs, counted from the lengths of the config's lists (nothing is
    expanded), at the line of the list that contributes most. A value still waiting for a host counts once: the
    check runs again when :func:`resolve` has expanded it. ``repeats`` is a command line's ``--repeats``."""
    n_rep = config.repeats if repeats is None else repeats
    override = config.matrix.get("batch_size")
    factors: list[tuple[int, tuple[Any, ...], str]] = [
        (len(config.values_of(a)), ("matrix", a.key) if a.source == axes.MATRIX else (a.key,), a.where)
        for a in axes.setting_axes()
    ]
    settings_n = math.prod(n for n, _, _ in factors)
    if override:
        batches_n = len(config.models) * len(override)
        factors += [(len(override), ("matrix", "batch_size"), "matrix.batch_size")]
    else:
        batches_n = sum(len(b) for b in config.models.values())
        factors += [(batches_n, ("models",), "models")]
    factors += [(n_rep, ("repeats",), "repeats") if repeats is None else (n_rep, (), "--repeats")]
    total = settings_n * batches_n * n_rep
    if total <= MAX_RUNS:
        return
    n, path, where = max(factors, key=lambda f: f[0])
    raise config.error(
        path,
        f"the plan would have {total:,} runs ({settings_n:,} settings x {batches_n:,} model batch sizes x {n_rep:,} "
        f"repeats), over the {MAX_RUNS:,} a sweep may have: split the config or shorten {where} ({n:,})",
    )


def _check_placements(config: Config, topology: topo_mod.Topology) -> None:
    """No pinned placement may ask for more threads than the host's cores can give."""
    threads = config.matrix.get("num_intra_threads", [0])
    for p in (p for p in config.matrix.get("placement", []) if p != "none"):
        for t in threads:
            try:
                topo_mod.check_threads(topology, p, t)
            except topo_mod.PlacementError as e:
                raise config.error(("matrix", "num_intra_threads"), f"placement {p}: {e}") from None
            except topo_mod.NotApplicable:
                pass  # recorded as n/a with the reason when it runs


def launch(config: Config, run: Planned) -> axes.Launch:
    """The CPUs and memory nodes of one run, on the host the config was resolved against (see :func:`axes.launch`
    for what it raises)."""
    return axes.launch(run.values, config.topology)


# ---------------------------------------------------------------------------------------------------------------
# Expansion


def setting_name(params: dict[str, Any]) -> str:
    """The classic column name of a setting (see :func:`cpubench.spec.axes.setting_name`)."""
    return axes.setting_name(params)


def _excluded(values: dict[str, Any], rules: list[dict[str, list[Any]]]) -> bool:
    """A rule excludes a combination when every key it names matches (a list in a rule means any of them)."""

    def hit(v: Any, xs: list[Any]) -> bool:
        return any(v == x and type(v) is type(x) for x in xs)

    return any(all(k in values and hit(values[k], xs) for k, xs in rule.items()) for rule in rules)


@dataclass(frozen=True)
class _Combination:
    """One crossing of the setting axes: as the config asked it, as it runs, and why those differ or it cannot."""

    asked: dict[str, Any]
    params: dict[str, Any]
    runs_as: tuple[str, ...]
    left_out: str | None


def _combinations(config: Config) -> Iterator[_Combination]:
    """Every combination of the setting axes' values, the first axis varying slowest; an axis the config leaves
    alone takes the default of the combination's other values (execution: graph in tensorflow, eager in pytorch)."""
    if pending := config.on_host():
        raise config.error(pending[0].path, f"{pending[0].text} depends on the host: resolve the config against one")
    setting_axes = axes.setting_axes()
    for combo in itertools.product(*(config.values_of(a) for a in setting_axes)):
        asked = dict(zip((a.name for a in setting_axes), combo, strict=True))
        for a in setting_axes:
            if a.default_for is not None and not config.gives(a):
                asked[a.name] = a.default_in(asked)
        params, why = axes.runs_as(asked)
        yield _Combination(asked, params, tuple(why), axes.not_applicable(params))


def plan(config: Config, repeats: int | None = None) -> list[Planned]:
    """Every run of the config, repeats outermost: a sweep cut short still has every setting measured once.

    Settings are the product of the setting axes in declaration order (the first axis varies slowest); within a
    setting, models in config order and their batch sizes (``matrix.batch_size`` overrides them all). A combination
    that runs as another is planned once, under the name of what runs; an exclude rule matches what the config
    asked or what runs. Raises ConfigError for a config not yet resolved against a host where it needs one.
    """
    batch_override = config.matrix.get("batch_size")
    runs_per_repeat: dict[tuple[str, str, int], tuple[Setting, str, int]] = {}
    for c in _combinations(config):
        if c.left_out:
            continue  # pytorch with graph execution, or tensorflow with script: see left_out()
        setting = Setting(setting_name(c.params), c.params)
        for model, model_batches in config.models.items():
            for bs in batch_override or model_batches:
                key = {"model": model, "batch_size": bs}
                if _excluded({**c.asked, **key}, config.exclude) or _excluded({**c.params, **key}, config.exclude):
                    continue
                runs_per_repeat.setdefault((setting.name, model, bs), (setting, model, bs))
    n_rep = config.repeats if repeats is None else repeats
    return [Planned(s, m, b, r) for r in range(n_rep) for (s, m, b) in runs_per_repeat.values()]


def left_out(config: Config) -> dict[str, int]:
    """The combinations of a config's axes that mean nothing, by reason, with how many settings each leaves out (a
    sweep says so at its start: ``framework: [tensorflow, pytorch]`` beside ``execution: [graph, script]`` runs
    tensorflow in graph and pytorch in script only)."""
    out: dict[str, set[str]] = {}
    for c in _combinations(config):
        if c.left_out:
            out.setdefault(c.left_out, set()).add(setting_name(c.params))
    return {why: len(names) for why, names in out.items()}


def runs_as(config: Config) -> dict[str, int]:
    """The settings a config asks for that run as another (the reason, with how many settings): pytorch on one
    device runs ``variable_update: replicated`` as parameter_server, and is named and measured so."""
    out: dict[str, set[str]] = {}
    for c in _combinations(config):
        if not c.left_out:
            for why in c.runs_as:
                out.setdefault(why, set()).add(setting_name(c.asked))
    return {why: len(names) for why, names in out.items()}


def plan_notes(config: Config) -> list[str]:
    """What a sweep and its dry run say at their start about the plan's shape (one line each, no prefix), and, for
    a config resolved against a host, how that host restricts this process (fewer CPUs than it has, a CPU quota)
    and thread counts above the CPUs it may use: facts a reader of the figures needs, which change nothing planned."""
    lines = [f"{n} settings left out of the plan: {why}" for why, n in left_out(config).items()]
    lines += [f"{n} settings run as another: {why}" for why, n in runs_as(config).items()]
    if config.topology is not None:
        lines += config.topology.notes()
        n_cpus = len(config.topology.cpus)
        if over := sorted(t for t in config.matrix.get("num_intra_threads", []) if t > n_cpus):
            # Pinned placements refuse these at resolve; unpinned runs oversubscribe, which may be the study.
            lines.append(
                f"num_intra_threads {', '.join(map(str, over))}: more threads than the {n_cpus} CPUs this process may "
                "use: those runs share CPUs"
            )
    return lines


def settings(config: Config) -> list[str]:
    """The distinct setting names of a config, in plan order."""
    return list(dict.fromkeys(p.setting.name for p in plan(config, repeats=1)))


def matches(run: Planned, patterns: list[str]) -> bool:
    """``--only`` globs match the setting, the model, or ``setting/model-bs<k>`` (e.g. ``syn-*/resnet50-*``)."""
    full = f"{run.setting.name}/{run.model}-bs{run.batch_size}"
    return any(fnmatch.fnmatchcase(x, pat) for pat in patterns for x in (run.setting.name, run.model, full))
