"""Hostile configs through the real command line: each is refused in one line, at its file and line, exit 2, fast.

Why subprocesses under a memory limit: the failures these guard against are a machine out of memory (YAML alias
bombs, ``1..3000000`` threads), a hang, or a traceback, and only the real ``cpubench run --config X --dry-run`` shows
what a user sees. The child runs under ``RLIMIT_AS`` of 2 GiB and a 60 s timeout, so a bomb fails the test rather
than the machine.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from cpubench.host import locks, topology
from cpubench.spec import axes, bounded, plan
from cpubench.spec import config as cfg

ROOT = Path(__file__).resolve().parent.parent
MEMORY = 2 << 30  # bytes of address space the child may use
TIMEOUT = 60  # seconds; a good refusal takes about one (the interpreter's start)

VALID = "name: hostile\nmodels: {trivial: [2]}\n"
INTER_64 = "[" + ", ".join(map(str, range(1, 65))) + "]"


def _limit_memory() -> None:
    """In the child before exec: a bomb hits this limit (MemoryError), not the machine."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


@dataclass
class Refused:
    """What ``cpubench run --dry-run`` did with a config."""

    rc: int
    stdout: str
    stderr: str
    seconds: float


def dry_run(tmp_path: Path, conf: Path, *extra: str) -> Refused:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CPUBENCH_")}
    env.update({"CPUBENCH_NO_TF_PROBE": "1", "PYTHONPATH": str(ROOT), locks.LOCK_ENV: str(tmp_path / "lock")})
    out = str(tmp_path / "data")
    argv = [sys.executable, "-m", "cpubench", "run", "--config", str(conf), "--dry-run", "--out", out]
    start = time.monotonic()
    p = subprocess.run(
        [*argv, *extra], cwd=tmp_path, env=env, capture_output=True, timeout=TIMEOUT, preexec_fn=_limit_memory
    )
    seconds = time.monotonic() - start
    return Refused(p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"), seconds)


def assert_refused(r: Refused, conf: Path, line: int | None, *words: str) -> str:
    """Exit 2, one stderr line naming the file (and line) and the problem, no traceback; returns that line."""
    assert "Traceback" not in r.stderr + r.stdout, r.stderr[-3000:]
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert r.rc == 2, (r.rc, r.stderr[-3000:])
    assert len(lines) == 1, r.stderr[-3000:]
    where = f"{conf}:{line}: " if line is not None else f"{conf}: "
    assert where in lines[0], (where, lines[0])
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert len(lines[0]) < 1000, lines[0]
    assert r.seconds < 30, r.seconds
    return lines[0]


def write(tmp_path: Path, data: str | bytes, name: str = "hostile.yaml") -> Path:
    p = tmp_path / name
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return p


# --------------------------------------------------------------------------------------------------- the cases

BILLION_LAUGHS = (
    VALID
    + 'description: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(f"x{i}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(9))
)

# (id, file content, line of the error or None, words the line must hold)
CASES: list[tuple[str, str | bytes, int | None, tuple[str, ...]]] = [
    # Issue item 7: bounded parsing.
    ("billion-laughs", BILLION_LAUGHS, 3, ("anchor &a", "not allowed")),
    ("alias-in-matrix", VALID + "matrix:\n  num_intra_threads: *t\n", 4, ("alias *t", "not allowed")),
    ("merge-key", VALID + "matrix:\n  <<: {num_intra_threads: 2}\n", 4, ("merge key <<", "not allowed")),
    ("over-1MiB", VALID + "description: |\n" + ("  " + "x" * 98 + "\n") * 11_000, None, ("1 MiB",)),
    ("range-3-million", VALID + "matrix:\n  num_intra_threads: 1..3000000\n", 4, ("up to 4096 threads",)),
    ("range-huge", VALID + "matrix:\n  num_intra_threads: 1..1" + "0" * 5000 + "\n", 4, ("up to 4096 threads",)),
    ("threads-over-max", VALID + "matrix:\n  num_inter_threads: [1, 100000]\n", 4, ("at most 4096",)),
    ("list-too-long", "name: x\nmodels:\n  trivial: [" + ", ".join(map(str, range(1, 5001))) + "]\n", 3,
     ("5,000 values", "at most 4,096")),
    ("plan-too-big", VALID + f"matrix:\n  num_intra_threads: 1..4096\n  num_inter_threads: {INTER_64}\n", 4,
     ("the plan would have 524,288 runs", "100,000", "matrix.num_intra_threads")),
    ("repeats-huge", VALID + "repeats: 1000000000000\n", 3, ("runs", "100,000", "repeats")),
    ("many-digits", VALID + "repeats: " + "9" * 5000 + "\n", 3, ("5,000 digits",)),
    ("too-many-excludes", VALID + "exclude:\n" + "  - {data: syn}\n" * 300, 3, ("300 rules", "at most 256")),
    # Issue item 9: one line, never a traceback.
    ("python-object-value", "name: !!python/object/apply:os.system ['touch PWNED']\nmodels: {trivial: 2}\n", 1,
     ("tag 'python/object/apply:os.system'", "not allowed")),
    ("python-object-key", VALID + "? !!python/object/apply:os.system ['touch PWNED']\n: 1\n", 3,
     ("tag 'python/object/apply:os.system'",)),
    ("python-name", VALID + "description: !!python/name:os.system\n", 3, ("tag 'python/name:os.system'",)),
    ("binary-tag", VALID + "description: !!binary aGVsbG8=\n", 3, ("tag 'binary'",)),
    ("local-tag", VALID + "description: !mine x\n", 3, ("tag '!mine'",)),
    ("latin-1", b"name: caf\xe9\nmodels: {trivial: 2}\n", 1, ("not UTF-8", "0xe9")),
    ("latin-1-line-3", (VALID + "description: d\xe9j\xe0 vu\n").encode("latin-1"), 3, ("not UTF-8",)),
    ("utf-16", VALID.encode("utf-16"), 1, ("not UTF-8",)),
    ("nul-byte", VALID + "description: a\0b\n", 3, ("U+0000",)),
    ("top-list", "- name: x\n- models: {trivial: 2}\n", 1, ("expected a mapping", "list")),
    ("top-scalar", "just some text\n", 1, ("expected a mapping", "str")),
    ("top-number", "42\n", 1, ("expected a mapping", "int")),
    ("list-key", VALID + "? [a, b]\n: 1\n", 3, ("a key that is a list",)),
    ("mapping-key", "name: x\n? {a: 1}\n: 1\nmodels: {trivial: 2}\n", 2, ("a key that is a mapping",)),
    ("deep-flow", "name: x\nmodels: " + "[" * 100_000 + "]" * 100_000 + "\n", 2, ("nested deeper than 16",)),
    ("deep-block", "name: x\nmodels:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 40)), 17, ("nested",)),
    ("two-documents", VALID + "---\n" + VALID, 3, ("not valid YAML", "single document")),
    ("newline-in-key", VALID + '"a\\nb": 1\n', 3, ("unknown key",)),
    ("bad-date", VALID + "description: 2024-13-45\n", 3, ("not a value", "month")),
    ("too-many-nodes", VALID + "description: [" + "1," * 120_000 + "1]\n", 3, ("100,000 keys and values",)),
    ("long-value", VALID + "env: {OMP_SCHEDULE: " + "x" * 70_000 + "}\n", 3, ("70,000 characters",)),
    # Issue item 2/secrets: a config's env is recorded with every run and enters the run hash.
    ("env-secret", VALID + "env:\n  AWS_SECRET_ACCESS_KEY: abc\n", 4,
     ("env.AWS_SECRET_ACCESS_KEY", "credential", "recorded in every result", "outside the config")),
    ("env-tf-token", VALID + "env: {TF_TOKEN_app_terraform_io: abc}\n", 3, ("env.TF_TOKEN_app_terraform_io",)),
    ("env-password", VALID + "env:\n  OMP_NUM_THREADS: 4\n  db_password: hunter2\n", 5, ("env.db_password",)),
]  # fmt: skip


@pytest.mark.parametrize(("content", "line", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_hostile_config_is_one_line_and_exit_2(
    tmp_path: Path, content: str | bytes, line: int | None, words: tuple[str, ...]
) -> None:
    conf = write(tmp_path, content)
    r = dry_run(tmp_path, conf)
    assert_refused(r, conf, line, *words)
    assert not (tmp_path / "PWNED").exists()
    assert not (tmp_path / "data").exists()


def test_repeats_on_the_command_line_are_bounded_too(tmp_path: Path) -> None:
    conf = write(tmp_path, VALID)
    r = dry_run(tmp_path, conf, "--repeats", "1000000000")
    assert_refused(r, conf, 1, "the plan would have 1,000,000,000 runs", "--repeats")


def test_a_device_that_never_ends_is_read_no_further_than_the_limit(tmp_path: Path) -> None:
    # /dev/zero is not a regular file: resolve_config's is_file() says no such config; a FIFO-like endless file is
    # what the byte bound is for, so a sparse 8 GiB file stands in for it (it takes no disk).
    big = tmp_path / "sparse.yaml"
    with big.open("wb") as f:
        f.truncate(8 << 30)
    r = dry_run(tmp_path, big)
    assert_refused(r, big, None, "1 MiB")


def test_the_shipped_configs_use_no_anchors_aliases_or_tags() -> None:
    """Refusing anchors and aliases costs the shipped configs nothing (the choice in cpubench.spec.bounded)."""
    for name in cfg.packaged_configs():
        text = (cfg.PACKAGE_CONFIGS / f"{name}.yaml").read_text()
        node, _ = bounded.compose(text, name)  # raises on an anchor, alias, merge key or tag
        assert node is not None
        assert len(text.encode()) < bounded.MAX_BYTES // 100


def test_a_config_at_the_limits_still_loads(tmp_path: Path) -> None:
    """The bounds refuse only what is past them: the widest thread range, a long list, benign env and text."""
    text = (
        "name: edge\nrepeats: 1\nmodels: {trivial: [" + ", ".join(map(str, range(1, 21))) + "]}\n"
        "matrix:\n  num_intra_threads: 1..4096\n"
        "env: {OMP_NUM_THREADS: 4, KMP_AFFINITY: 'granularity=fine,compact', MALLOC_CONF: 'background_thread:true'}\n"
        "description: d\u00e9j\u00e0 vu, 2024-01-02\n"
    )
    c = cfg.parse_config(text, "edge.yaml")
    assert c.matrix["num_intra_threads"] == list(range(1, 4097))
    assert len(cfg.plan(c)) == 4096 * 20 <= plan.MAX_RUNS
    assert cfg.parse_config("\ufeff" + VALID, "bom.yaml").name == "hostile"  # a BOM from an editor is fine


def _host(cores: int) -> topology.Topology:
    """A one-socket, one-node host with ``cores`` cores, built by hand (no sysfs has that many)."""
    cpus = tuple(range(cores))
    return topology.Topology(
        cpus=cpus,
        sockets=(0,),
        socket_cores=(tuple((c,) for c in cpus),),
        nodes=(0,),
        node_cpus=(cpus,),
        node_distances=((10,),),
        nodes_with_memory=(0,),
    )


def test_all_against_a_huge_topology_stays_bounded() -> None:
    """`all` is the cores of one socket of the host the plan is resolved against: a host (or a crafted topology)
    past the thread bound is refused at the config's line, and `all` within it still counts toward the plan bound.
    (A unit test: ``cpubench run`` reads this machine's own sysfs, which cannot be made huge.)"""
    c = cfg.parse_config(VALID + "matrix:\n  num_intra_threads: all\n", "all.yaml")
    with pytest.raises(cfg.ConfigError, match=r"^all\.yaml:4: matrix\.num_intra_threads: all: this host has 1,000,000"):
        cfg.resolve(c, _host(1_000_000))
    wide = cfg.parse_config(VALID + "repeats: 30\nmatrix:\n  num_intra_threads: all\n", "wide.yaml")
    with pytest.raises(cfg.ConfigError, match=r"^wide\.yaml:5: .*122,880 runs .* over the 100,000"):
        cfg.resolve(wide, _host(axes.MAX_THREADS))
    assert len(cfg.plan(cfg.resolve(c, _host(64)))) == 64 * 2
