"""Command-line entry of the engine: ``python -m tf_cnn_benchmarks``, the ``tf_cnn_benchmarks`` console script, and
``python tf_cnn_benchmarks/tf_cnn_benchmarks.py`` (how upstream's users call it) all land in :func:`main`.

Flags are parsed and the speed-relevant environment is set before TensorFlow is imported, because TensorFlow reads
TF_ENABLE_ONEDNN_OPTS and the OpenMP variables once, at import. Every way a run can end (a bad command line, an
import failure, a failed or finished run) goes through one :class:`~tf_cnn_benchmarks.result.RunFacts`, from which
the result JSON is written (``--result_json``).
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__" and not __package__:
    # Run as a file: its folder would shadow the package of the same name; import from the repo root instead.
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path = [p for p in sys.path if os.path.abspath(p or ".") != _here]
    sys.path.insert(0, os.path.dirname(_here))

import argparse  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

from tf_cnn_benchmarks import flags as flagdefs  # noqa: E402
from tf_cnn_benchmarks import result  # noqa: E402
from tf_cnn_benchmarks.hostfacts import first_line  # noqa: E402


def _set_environment(ns: flagdefs.argparse.Namespace) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    # oneDNN kernels on by default, on every x86 host alike (TensorFlow itself turns them on only for CPUs with
    # AVX512-VNNI/BF16 or AMX), so hosts are compared on one kernel library. An explicit --mkl wins over the
    # environment; otherwise a TF_ENABLE_ONEDNN_OPTS already set is respected.
    if "mkl" in ns.explicit_flags or "TF_ENABLE_ONEDNN_OPTS" not in os.environ:
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1" if ns.mkl else "0"
    if ns.kmp_blocktime >= 0:
        os.environ["KMP_BLOCKTIME"] = str(ns.kmp_blocktime)
    if ns.kmp_affinity:
        os.environ["KMP_AFFINITY"] = ns.kmp_affinity
    if ns.kmp_settings >= 0:
        os.environ["KMP_SETTINGS"] = str(ns.kmp_settings)


_KEEP_ALIVE: list[object] = []


def _engine(ns: argparse.Namespace) -> type:
    """The benchmark class of the run's framework; imports that framework (only that one). Both raise
    :class:`~tf_cnn_benchmarks.preflight.BenchmarkError` for a run that cannot proceed."""
    from tf_cnn_benchmarks.preflight import BenchmarkError

    if ns.framework == "pytorch":
        try:
            from tf_cnn_benchmarks.torchbench import TorchBenchmark
        except ModuleNotFoundError as e:
            if e.name != "torch":
                raise
            raise BenchmarkError(
                "--framework=pytorch: torch is not installed; install the extra: pip install -e '.[torch]'"
            ) from None
        return TorchBenchmark
    _import_tensorflow()
    from tf_cnn_benchmarks.benchmark import Benchmark

    return Benchmark


_KERAS_PRELOAD = "keras.src.optimizers"


def _import_tensorflow() -> None:
    """Import TensorFlow without its eager preload of Keras's optimizers.

    TensorFlow's ``__init__`` imports ``keras.src.optimizers`` for Keras's SavedModel registrations, about a second
    of each run's start on 2 cores (a quarter of the import), for a library this engine never uses: its network,
    step and optimizers are its own. A ``None`` entry in ``sys.modules`` makes that one import raise ImportError,
    which TensorFlow catches and ignores; the entry is removed right after, so Keras still imports if asked for.
    """
    if "tensorflow" in sys.modules or _KERAS_PRELOAD in sys.modules:
        return
    sys.modules[_KERAS_PRELOAD] = None  # type: ignore[assignment]
    try:
        import tensorflow  # noqa: F401
    finally:
        if sys.modules.get(_KERAS_PRELOAD, 0) is None:
            del sys.modules[_KERAS_PRELOAD]


def _private_tempdir() -> str:
    """A temporary folder of this process's own, made the default of :mod:`tempfile` (and so TensorFlow's autograph
    sources and torch.compile's caches go there), removed by :func:`main` when the run ends.

    Why: cli() leaves with os._exit, so the frameworks' own exit-time cleanups never run, and each run would leave
    its generated files in the system's temporary folder."""
    path = tempfile.mkdtemp(prefix="tf_cnn_benchmarks-")
    tempfile.tempdir = path
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(path, "inductor"))
    return path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    facts = result.RunFacts(argv=list(argv))
    try:
        ns = flagdefs.parse(argv)
    except flagdefs.FlagError as e:
        # The runner reads the result JSON: give it the reason even when the command line itself is wrong (unless
        # the JSON's own path is what is wrong: then the line is all there is).
        path = next(iter(flagdefs.values_of(argv, "result_json")), "")
        if path and flagdefs.result_json_problem(path) is None:
            result.write(path, facts.record(str(e)))
        return flagdefs.main_error(str(e))
    _set_environment(ns)
    scratch = _private_tempdir()
    try:
        return measure(ns, argv)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def measure(ns: argparse.Namespace, argv: list[str]) -> int:
    """Measure every batch size the command line asks for, in turn, in this one process: ``--batch_size`` alone, or
    each of ``--batch_sizes`` with its own result JSON (``--result_json`` with ``{batch_size}`` in it) and log block.

    The framework is imported and its runtime configured once; the network is built once and its step traced again
    for each batch size (one trace per size: bench/dynamic_batch.py measured a dynamic-batch trace at the same
    speed). Each size's record carries its own wall time (``timings.wall``: the first size's includes the import),
    so the runner never has to share the process's time out. A size that fails (one that does not fit) is recorded
    failed and the next sizes still run; the exit code is 0 when every size was measured, 130 on Ctrl-C, else 1.
    """
    from tf_cnn_benchmarks.preflight import BenchmarkError

    several = bool(ns.batch_sizes)
    sizes = [int(x) for x in ns.batch_sizes.split(",")] if several else [ns.batch_size]
    shared: dict = {}
    code = 0
    t_size = time.perf_counter()
    for k, b in enumerate(sizes):
        nb = argparse.Namespace(**vars(ns))
        nb.batch_size = b
        facts = result.RunFacts(argv=list(argv), flags=nb, framework=ns.framework)
        reason: str | None = None
        try:
            Benchmark = _engine(ns)
            if k == 0:
                facts.import_s = time.perf_counter() - t_size
            bench = Benchmark(nb, facts, shared=shared)
            # Kept alive past main(): destroying a real-data run's tf.data iterator waits for every in-flight decode
            # (seconds per run); cli() ends the process with os._exit right after, so nothing needs destroying.
            _KEEP_ALIVE.append(bench)
            path = ns.result_json.replace("{batch_size}", str(b)) if ns.result_json else ""

            def fatal(why: str, facts: result.RunFacts = facts, path: str = path) -> None:
                if path:  # before a call that a watchdog may have to end: record why
                    result.write(path, facts.record(why))

            if ns.framework == "tensorflow":
                from tf_cnn_benchmarks import strategies

                strategies.on_fatal = fatal
            try:
                bench.run()
            except BenchmarkError as e:
                reason = str(e)
            except MemoryError:
                reason = f"out of memory: {ns.model} does not fit at batch size {b}; lower --batch_size"
        except BenchmarkError as e:  # the framework is not installed: every size fails alike
            reason = str(e)
        except KeyboardInterrupt:
            reason, code = "interrupted", 130
        except Exception as e:  # noqa: BLE001 - any crash becomes a failed result with its reason, never a 0
            traceback.print_exc()
            reason = first_line(e)
        if reason is not None:
            where = f"batch size {b}: " if several else ""
            print(f"tf_cnn_benchmarks: error: {where}{reason}", file=sys.stderr, flush=True)
            code = code or 1
        if ns.result_json:
            now = time.perf_counter()
            facts.wall_s = now - t_size
            rec = facts.record(reason)
            if several:
                rec.group = {"batch_sizes": sizes, "trace": "per-batch"}
            result.write(ns.result_json.replace("{batch_size}", str(b)), rec)
        t_size = time.perf_counter()
        if code == 130:
            break
    return code


def cli() -> None:
    """Console entry: run, then leave without TensorFlow's slow interpreter teardown.

    Everything the run produces (stdout, stderr, the result JSON) is flushed or renamed into place before, so the
    seconds TensorFlow spends tearing down its runtime at exit are skipped for every run of a sweep.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    cli()
