#!/usr/bin/env bash
# Set up .venv (with the test, torch and fleet extras: the PyTorch engine and cpubench fleet are tested, not skipped)
# and the system packages the tests use (scripts/_system.sh), then run the whole test suite. Extra arguments go to
# pytest.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh" test,torch,fleet
source "$ROOT/scripts/_system.sh"
ruff check tf_cnn_benchmarks cpubench tests bench
# The rooms' import rules (pyproject.toml [tool.importlinter]): imports point down, the engine never imports cpubench.
lint-imports --no-cache
exec python -m pytest "$@"
