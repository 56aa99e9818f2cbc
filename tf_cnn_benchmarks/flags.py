"""Every engine flag, once: name, type, default, help and validation.

Why hand-rolled on argparse rather than absl: the upstream tool took absl-style flags (``--flag=value``,
``--flag value``, ``--forward_only``, ``--forward_only=True``, ``--noforward_only``) and old scripts pass them in all
those spellings; we accept them all, reject anything unknown with one clear line, and keep the spec as plain data so
the runner, the result JSON and the docs can all read it.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass
from typing import Any


class FlagError(Exception):
    """A bad command line: the message is the one line the user sees."""


@dataclass(frozen=True)
class Flag:
    name: str
    type: type
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None


FRAMEWORKS = ("tensorflow", "pytorch")
# Each framework's ways of running the step, its default first.
EXECUTIONS: dict[str, tuple[str, ...]] = {
    "tensorflow": ("graph", "eager", "xla"),
    "pytorch": ("eager", "script", "compile"),
}

FLAGS: tuple[Flag, ...] = (
    # What to run
    Flag("model", str, "trivial", "model name; see `cpubench models`"),
    Flag("batch_size", int, 0, "batch size per device; left out = the model's default"),
    Flag(
        "batch_sizes",
        str,
        "",
        "comma-separated batch sizes measured one after another in this process (inference on synthetic data; "
        "one network, each size its own trace); each writes --result_json with {batch_size} replaced",
    ),
    Flag("num_batches", int, 100, "number of timed steps"),
    Flag("num_epochs", float, 0.0, "alternative to --num_batches for real data: epochs of the subset"),
    Flag("num_warmup_batches", int, 10, "untimed steps run first (graph build, allocator, caches)"),
    Flag(
        "max_warmup_batches",
        int,
        0,
        "above --num_warmup_batches: warm up until the step time is steady (median of the last 3 steps within 5% "
        "of the 3 before), at most this many steps",
    ),
    Flag("num_windows", int, 1, "measured windows in one process, each of --num_batches timed steps (repeats)"),
    Flag("min_window_seconds", float, 0.0, "each measured window runs at least this long (more steps if needed)"),
    Flag(
        "barrier",
        str,
        "",
        "a folder shared with concurrent instances: after warm-up, say ready there and wait until every instance is; "
        "all then time together until the end time the starter writes (cpubench tune --verify)",
    ),
    Flag("barrier_timeout", float, 600.0, "seconds to wait at --barrier for the other instances"),
    Flag("display_every", int, 10, "print a progress line every N timed steps"),
    Flag("forward_only", bool, False, "inference only: no gradients, no variable updates"),
    Flag("eval", bool, False, "alias of --forward_only kept for upstream scripts"),
    Flag("input_only", bool, False, "time the input pipeline alone (no model)"),
    Flag("seed", int, 1234, "random seed for weights and synthetic data"),
    # Devices and numerics
    Flag("device", str, "cpu", "device type that computes the model", choices=("cpu", "gpu")),
    Flag("num_gpus", int, 1, "number of devices; with --device=cpu, logical CPU devices splitting the host"),
    Flag(
        "logical_gpus",
        bool,
        False,
        "with --device=gpu: split one physical GPU into --num_gpus logical GPUs (every variable-update path on one "
        "card; the figures are not those of real GPUs and NCCL cannot run between them)",
    ),
    Flag("data_format", str, "", "NHWC or NCHW; default NHWC on cpu, NCHW on gpu", choices=("", "NHWC", "NCHW")),
    Flag("use_fp16", bool, False, "half precision compute (bfloat16 on CPU, float16 on GPU), fp32 variables"),
    Flag("precision", str, "", "fp32, fp16 or bf16; overrides --use_fp16", choices=("", "fp32", "fp16", "bf16")),
    Flag("xla_compile", bool, False, "compile the step with XLA (tf.function(jit_compile=True))"),
    Flag(
        "framework",
        str,
        "tensorflow",
        "which framework runs the declared network: tensorflow, or pytorch (the optional torch extra)",
        choices=FRAMEWORKS,
    ),
    Flag(
        "execution",
        str,
        "",
        "how the step runs. tensorflow: graph (one tf.function, the default), eager (ops one by one), xla (graph, "
        "the model compiled by XLA; the same as --xla_compile). pytorch: eager (the default), script (torch.jit "
        "trace; for inference also frozen and optimized), compile (torch.compile with inductor)",
        choices=("", *dict.fromkeys(m for modes in EXECUTIONS.values() for m in modes)),
    ),
    Flag("xla", bool, False, "alias of --xla_compile"),
    Flag("num_intra_threads", int, 0, "threads inside one op; 0 = TensorFlow's default (all cores)"),
    Flag("num_inter_threads", int, 0, "ops run at once; 0 = TensorFlow's default"),
    Flag(
        "mkl",
        bool,
        True,
        "oneDNN CPU kernels (TF_ENABLE_ONEDNN_OPTS=1, default on every x86 host); --mkl=false turns them off. "
        "Without the flag, a TF_ENABLE_ONEDNN_OPTS already in the environment is respected",
    ),
    Flag(
        "batch_norm_kernel",
        str,
        "auto",
        "training batch norm on CPU. auto: the engine's own kernel (batch norm and the ReLU after it fused, forward "
        "and backward; built for this host with g++ on first use) for fp32 NHWC training without XLA, TensorFlow's "
        "elsewhere or where it cannot be built; tensorflow: always TensorFlow's. The run's record says which ran",
        choices=("auto", "tensorflow"),
    ),
    Flag("kmp_blocktime", int, -1, "sets KMP_BLOCKTIME for OpenMP builds; -1 = leave the environment alone"),
    Flag("kmp_affinity", str, "", "sets KMP_AFFINITY for OpenMP builds"),
    Flag("kmp_settings", int, -1, "sets KMP_SETTINGS for OpenMP builds; -1 = leave alone"),
    # Training
    Flag("optimizer", str, "sgd", "optimizer", choices=("sgd", "momentum", "rmsprop")),
    Flag("learning_rate", float, 0.005, "constant learning rate"),
    Flag("momentum", float, 0.9, "momentum for --optimizer=momentum|rmsprop"),
    Flag("weight_decay", float, 0.00004, "L2 weight decay added to the loss"),
    # Several devices and variable updates
    Flag(
        "variable_update",
        str,
        "parameter_server",
        "how gradients and variables move between devices",
        choices=("parameter_server", "replicated", "independent", "distributed_replicated", "collective_all_reduce"),
    ),
    Flag("local_parameter_device", str, "cpu", "where parameter_server keeps the variables", choices=("cpu", "gpu")),
    Flag("all_reduce_spec", str, "", "all-reduce for replicated: nccl, or empty for the default copy reduction"),
    Flag("use_nccl", bool, False, "Lambda's alias: --use_nccl=true is --all_reduce_spec=nccl"),
    Flag("job_name", str, "", "multi-worker: worker or ps", choices=("", "worker", "ps")),
    Flag("worker_hosts", str, "", "multi-worker: comma-separated host:port of the workers"),
    Flag("ps_hosts", str, "", "multi-worker: comma-separated host:port of the parameter servers"),
    Flag("task_index", int, 0, "multi-worker: index of this task in its job"),
    Flag("cluster_timeout", float, 60.0, "multi-worker: seconds to wait for every peer before failing"),
    # Data
    Flag("data_dir", str, "", "folder of ImageNet-format TFRecord shards; empty = synthetic data"),
    Flag("data_name", str, "", "data set name; only imagenet is known", choices=("", "imagenet")),
    Flag("data_subset", str, "train", "which shards to read", choices=("train", "validation")),
    Flag("distortions", bool, False, "random flip and colour distortion on real data"),
    Flag("datasets_num_private_threads", int, 0, "threads of a private pool for the input pipeline; 0 = shared"),
    Flag("datasets_prefetch_buffer_size", int, 0, "batches prefetched to the devices; 0 = autotune"),
    Flag("label_offset", int, 0, "added to the records' labels (use -1 for 1-based labels into a 0-based head)"),
    # Output
    Flag("result_json", str, "", "write the run (flags, per-step times, images/sec, status) as JSON here"),
)

_BY_NAME = {f.name: f for f in FLAGS}
_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off"}


def known_flags() -> list[str]:
    return [f.name for f in FLAGS]


def _parse_value(flag: Flag, raw: str) -> Any:
    if flag.type is bool:
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise FlagError(f"--{flag.name}={raw}: expected true or false")
    try:
        value = flag.type(raw)
    except ValueError:
        raise FlagError(f"--{flag.name}={raw}: expected {flag.type.__name__}") from None
    if flag.choices is not None:
        if flag.type is str and raw.upper() in flag.choices and raw not in flag.choices:
            value = raw.upper()
        elif flag.type is str and raw.lower() in flag.choices and raw not in flag.choices:
            value = raw.lower()
        if value not in flag.choices:
            shown = ", ".join(c for c in flag.choices if c) if flag.type is str else flag.choices
            raise FlagError(f"--{flag.name}={raw}: must be one of {shown}")
    return value


def parse(argv: list[str]) -> argparse.Namespace:
    """Parse absl-style flags into a Namespace holding every flag (defaults filled in)."""
    for path in values_of(argv, "result_json"):
        problem = result_json_problem(path)
        if problem:  # first: a problem here is found even when another flag of the command line is wrong too
            raise FlagError(problem)
    values: dict[str, Any] = {f.name: f.default for f in FLAGS}
    explicit: set[str] = set()
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-h", "--help", "--helpfull"):
            print(usage())
            raise SystemExit(0)
        if not arg.startswith("-") or arg in ("-", "--"):
            raise FlagError(f"unexpected argument {arg!r}: flags look like --name=value")
        body = arg.lstrip("-")
        name, eq, raw = body.partition("=")
        flag = _BY_NAME.get(name)
        negated = _BY_NAME.get(name[2:]) if name.startswith("no") and not eq else None
        if flag is None and negated is not None and negated.type is bool:
            flag, raw, eq = negated, "false", "="
        if flag is None:
            close = [n for n in _BY_NAME if name.replace("-", "_") == n or n.startswith(name[:6])][:3]
            hint = f" (did you mean {', '.join('--' + c for c in close)}?)" if close else ""
            raise FlagError(f"unknown flag --{name}{hint}; see --help for the flags this engine takes")
        if not eq:
            if flag.type is bool:
                # --forward_only alone means true; --forward_only true (next token a bool word) is accepted too.
                if i + 1 < len(argv) and argv[i + 1].lower() in _TRUE | _FALSE:
                    raw = argv[i + 1]
                    i += 1
                else:
                    raw = "true"
            else:
                if i + 1 >= len(argv):
                    raise FlagError(f"--{name} needs a value")
                raw = argv[i + 1]
                i += 1
        values[flag.name] = _parse_value(flag, raw)
        explicit.add(flag.name)
        i += 1
    ns = argparse.Namespace(**values)
    ns.explicit_flags = sorted(explicit)
    _normalise(ns)
    validate(ns)
    return ns


def values_of(argv: list[str], name: str) -> list[str]:
    """Every value ``argv`` gives flag ``name`` (``--name=v``, ``-name=v`` or ``--name v``), read without parsing:
    from a command line that may not parse, as the engine's ``main`` reads ``--result_json`` to record why."""
    found = []
    for i, arg in enumerate(argv):
        if not arg.startswith("-"):
            continue
        key, eq, value = arg.lstrip("-").partition("=")
        if key == name:
            found.append(value if eq else (argv[i + 1] if i + 1 < len(argv) else ""))
    return found


def result_json_problem(path: str) -> str | None:
    """Why the result JSON cannot be written at ``path`` (one line with the fix), or None.

    Why before the run: the record is written after the last step, so a path that is a folder, or under a file, or
    in a folder that does not exist would otherwise cost the whole run and end in a traceback, its figure lost. A
    ``{batch_size}`` in the folder part (one folder per size of --batch_sizes) is left to the write."""
    if not path:
        return None
    target = os.path.abspath(path)
    folder = os.path.dirname(target)
    if "{batch_size}" in folder:
        return None
    if os.path.isdir(target):
        example = os.path.join(path, "result.json")
        return f"--result_json={path} is a folder; give a file name in it, e.g. --result_json={example}"
    up = folder
    while not os.path.exists(up):  # the nearest part of the path that exists
        up = os.path.dirname(up)
    if not os.path.isdir(up):
        return f"--result_json={path}: {up} is a file, not a folder; give a path in a folder"
    if up != folder:
        return (f"--result_json={path}: the folder {folder} does not exist; create it (mkdir -p {folder}) or give "
                "a path in an existing folder")  # fmt: skip
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"--result_json={path}: the folder {folder} is not writable; give a path in a folder you can write to"
    return None


def _normalise(ns: argparse.Namespace) -> None:
    """Fold aliases into their canonical flags so the engine reads one name for each thing."""
    if ns.eval:
        ns.forward_only = True
    if ns.xla:
        ns.xla_compile = True
    modes = EXECUTIONS[ns.framework]
    if ns.framework == "pytorch" and ns.xla_compile:
        raise FlagError("--xla_compile: XLA is tensorflow's compiler; with --framework=pytorch use --execution=compile")
    if not ns.execution:
        ns.execution = "xla" if ns.xla_compile else modes[0]
    if ns.execution not in modes:
        other = next(f for f, ms in EXECUTIONS.items() if ns.execution in ms)
        raise FlagError(
            f"--execution={ns.execution} is a {other} mode; {ns.framework} runs {', '.join(modes)}"
            + ("" if "framework" in getattr(ns, "explicit_flags", ()) else f" (or add --framework={other})")
        )
    if ns.execution == "xla":
        ns.xla_compile = True
    if ns.use_nccl:
        if ns.all_reduce_spec and ns.all_reduce_spec != "nccl":
            raise FlagError(f"--use_nccl=true conflicts with --all_reduce_spec={ns.all_reduce_spec}; give only one")
        ns.all_reduce_spec = "nccl"
    if not ns.precision:
        ns.precision = ("bf16" if ns.device == "cpu" else "fp16") if ns.use_fp16 else "fp32"
    ns.use_fp16 = ns.precision != "fp32"
    if not ns.data_format:
        ns.data_format = "NHWC" if ns.device == "cpu" else "NCHW"
    if ns.data_dir and not ns.data_name:
        ns.data_name = "imagenet"


def validate(ns: argparse.Namespace) -> None:
    from tf_cnn_benchmarks.models import registry  # declarations only: no framework is imported

    if ns.model not in registry.names():
        raise FlagError(f"--model={ns.model}: unknown model; known models: {', '.join(registry.names())}")
    if ns.batch_size < 0 or (ns.batch_size == 0 and "batch_size" in getattr(ns, "explicit_flags", ())):
        raise FlagError(f"--batch_size={ns.batch_size}: must be at least 1 (leave it out for the model's default)")
    if not 0 <= ns.num_epochs < math.inf:  # nan fails too: it would silently mean "no steps" below
        raise FlagError(f"--num_epochs={ns.num_epochs:g}: must be a number of epochs, 0 (use --num_batches) or more")
    if ns.num_batches < 1 and not ns.num_epochs > 0:
        raise FlagError(f"--num_batches={ns.num_batches}: must be at least 1")
    if not 0 <= ns.seed < 2**32:  # numpy's seed range: outside it the run fails after the framework's import
        raise FlagError(f"--seed={ns.seed}: must be from 0 to {2**32 - 1}")
    if ns.num_warmup_batches < 0:
        raise FlagError(f"--num_warmup_batches={ns.num_warmup_batches}: must be 0 or more")
    if ns.max_warmup_batches < 0:
        raise FlagError(f"--max_warmup_batches={ns.max_warmup_batches}: must be 0 or more")
    if ns.batch_sizes:
        sizes = ns.batch_sizes.split(",")
        # Distinct as numbers: "1,01" would measure batch 1 twice, the second record replacing the first's file.
        if not all(x.strip().isdigit() and int(x) > 0 for x in sizes) or len({int(x) for x in sizes}) != len(sizes):
            raise FlagError(f"--batch_sizes={ns.batch_sizes}: expected distinct batch sizes like 1,2,4,8")
        if not ns.forward_only or ns.data_dir or ns.input_only or ns.job_name:
            raise FlagError("--batch_sizes: measures inference on synthetic data in one process; add "
                            "--forward_only and leave out --data_dir")  # fmt: skip
        if ns.result_json and "{batch_size}" not in ns.result_json:
            raise FlagError("--batch_sizes: --result_json must hold {batch_size} (one result per batch size)")
    if ns.num_windows < 1:
        raise FlagError(f"--num_windows={ns.num_windows}: must be at least 1")
    if not 0 <= ns.min_window_seconds < float("inf"):
        raise FlagError(f"--min_window_seconds={ns.min_window_seconds}: must be 0 or more seconds")
    if ns.barrier and ns.batch_sizes:
        raise FlagError("--barrier: an instance measures one batch size; leave out --batch_sizes")
    if not 0 < ns.barrier_timeout < float("inf"):
        raise FlagError(f"--barrier_timeout={ns.barrier_timeout}: must be a number of seconds above 0")
    if ns.display_every < 1:
        raise FlagError(f"--display_every={ns.display_every}: must be at least 1")
    if ns.num_gpus < 1:
        raise FlagError(f"--num_gpus={ns.num_gpus}: must be at least 1")
    if ns.logical_gpus and ns.device != "gpu":
        raise FlagError("--logical_gpus splits one GPU and needs --device=gpu; with --device=cpu, --num_gpus already "
                        "splits the CPU into logical devices")  # fmt: skip
    if ns.logical_gpus and ns.all_reduce_spec == "nccl":
        raise FlagError("--logical_gpus with NCCL: NCCL cannot all-reduce between logical devices of one GPU; "
                        "drop --use_nccl / --all_reduce_spec=nccl, or run on real GPUs")  # fmt: skip
    if ns.num_intra_threads < 0 or ns.num_inter_threads < 0:
        raise FlagError("--num_intra_threads and --num_inter_threads must be 0 (default) or more")
    if ns.all_reduce_spec not in ("", "nccl", "xring", "pscpu", "psgpu"):
        raise FlagError(f"--all_reduce_spec={ns.all_reduce_spec}: known specs are nccl, xring, pscpu, psgpu")
    why = pytorch_problem(ns) if ns.framework == "pytorch" else None
    if why:
        raise FlagError(why)
    if ns.job_name and not ns.worker_hosts:
        raise FlagError(f"--job_name={ns.job_name} needs --worker_hosts=host:port,...")
    why = _tensorflow_devices_problem(ns) if ns.framework == "tensorflow" else None
    if why:
        raise FlagError(why)


MULTI_WORKER = ("distributed_replicated", "collective_all_reduce")


def pytorch_problem(ns: argparse.Namespace) -> str | None:
    """What the PyTorch engine cannot run, seen from the flags alone, in the words of ``torchbench.unsupported``.

    Why here as well: torchbench imports torch (seconds) before it can say so, and its refusal is a failed run (exit
    1); a command line it can never run is a usage error (exit 2), told before any framework is imported."""
    if ns.device != "cpu":
        return "--device=gpu: the pytorch engine runs on the CPU (torch's CPU build); use --device=cpu"
    if ns.num_gpus != 1:
        return f"--num_gpus={ns.num_gpus}: the pytorch engine runs one device; leave --num_gpus at 1"
    if ns.data_dir or ns.input_only:
        return "--data_dir: real data is not supported for pytorch; leave out --data_dir (synthetic data)"
    given = next((f"--{n}" for n in ("job_name", "worker_hosts", "ps_hosts") if getattr(ns, n)), None)
    if given:
        return f"{given}: multi-worker runs are not supported for pytorch; run one process"
    if ns.variable_update != "parameter_server" or ns.all_reduce_spec:
        return (f"--variable_update={ns.variable_update}: the pytorch engine runs one device with local variables; "
                "leave out --variable_update and --all_reduce_spec")  # fmt: skip
    return None


def _tensorflow_devices_problem(ns: argparse.Namespace) -> str | None:
    """The cluster combinations :mod:`tf_cnn_benchmarks.strategies` refuses that the flags alone show, in
    its words, so they are usage errors told before TensorFlow is imported (seconds) rather than failed runs.

    Only combinations of two or more flags that no single flag implies: cpubench validates each of a config's
    ``flags:`` alone (a fleet's ``--worker_hosts`` and ``--task_index`` among them), so a check that one flag alone
    trips would refuse configs that run."""
    if ns.variable_update not in MULTI_WORKER:
        return None
    workers = [h for h in (x.strip() for x in ns.worker_hosts.split(",")) if h]
    if not workers:
        return f"--variable_update={ns.variable_update} needs --worker_hosts=host:port,... and --task_index"
    if ns.job_name == "ps" or ns.ps_hosts:
        return ("parameter-server tasks are not used: this engine runs multi-worker training as a collective "
                "all-reduce between workers; drop --ps_hosts and start only the --job_name=worker tasks")  # fmt: skip
    if not 0 <= ns.task_index < len(workers):
        return f"--task_index={ns.task_index}: must be below the {len(workers)} worker(s) given"
    return None


def usage() -> str:
    lines = ["usage: python -m tf_cnn_benchmarks [--flag=value ...]", "", "flags:"]
    for f in FLAGS:
        default = f.default if f.default not in ("", None) else '""'
        choices = f" [{'|'.join(c for c in f.choices if c)}]" if f.choices else ""
        lines.append(f"  --{f.name}{choices}  (default {default})\n      {f.help}")
    return "\n".join(lines)


def as_dict(ns: argparse.Namespace) -> dict[str, Any]:
    """Every flag with its effective value, for the result JSON."""
    return {f.name: getattr(ns, f.name) for f in FLAGS}


def main_error(msg: str) -> int:
    print(f"tf_cnn_benchmarks: error: {msg}", file=sys.stderr)
    return 2
