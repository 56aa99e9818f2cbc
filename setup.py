"""cpubench: a tf_cnn_benchmarks-compatible TensorFlow 2 engine and a suite that compares CPUs with it."""

from setuptools import find_packages, setup

setup(
    name="cpubench",
    version="0.1.0",
    description="TensorFlow CNN benchmark suite: which CPU runs these networks fastest, and why",
    python_requires=">=3.10",
    # cpubench/configs holds only the shipped YAML matrices: a data package, listed so setuptools installs it
    # (and does not warn that an importable folder is missing from `packages`).
    packages=[
        *find_packages(include=["tf_cnn_benchmarks", "tf_cnn_benchmarks.*", "cpubench", "cpubench.*"]),
        "cpubench.configs",
    ],
    include_package_data=True,
    # The engine's kernel sources: compiled on the host that runs them (tf_cnn_benchmarks.kernels).
    package_data={"cpubench.configs": ["*.yaml"], "tf_cnn_benchmarks.kernels": ["*.cc"]},
    # TensorFlow comes from exactly one of the extras `cpu` (tensorflow-cpu) and `cuda` (tensorflow[and-cuda]): the
    # two distributions install the same tensorflow/ package, so both at once is an accident of install order.
    # scripts/_venv.sh picks one for the host (scripts/tfchoice.py: CUDA where an NVIDIA GPU is visible;
    # CPUBENCH_TF=cpu|cuda overrides); a plain `pip install -e .` installs no TensorFlow.
    install_requires=[
        "numpy",
        "pandas",
        "tabulate",
        "pyyaml",
        "py-cpuinfo",
        "matplotlib",
    ],
    extras_require={
        "test": ["pytest", "pytest-timeout", "ruff", "import-linter", "hypothesis"],
        "cpu": ["tensorflow-cpu==2.21.0"],
        "cuda": ["tensorflow[and-cuda]==2.21.0"],
        "gpu": ["tensorflow[and-cuda]==2.21.0"],  # the old name of `cuda`, kept for old install notes
        # The PyTorch engine (--framework=pytorch). threadpoolctl names the OpenMP/BLAS pools torch loads, for
        # host.json's record of the thread set-up a PyTorch run had.
        "torch": ["torch==2.13.0", "threadpoolctl"],
        # cpubench fleet: Dask distributed does the dispatch to many hosts, the per-host worker restrictions and the
        # failure detection (a worker that dies leaves its scheduler), so cpubench writes no scheduler of its own.
        # Pure Python, with a plain `dask scheduler`; dask and distributed are released together and pinned as a pair.
        "fleet": ["dask[distributed]==2026.8.0", "distributed==2026.8.0"],
    },
    entry_points={
        "console_scripts": [
            "tf_cnn_benchmarks=tf_cnn_benchmarks.tf_cnn_benchmarks:cli",
            "cpubench=cpubench.cli:main",
        ]
    },
)
