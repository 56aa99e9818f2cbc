#!/usr/bin/env bash
# Set up .venv (with the test extra) and run the whole test suite. Extra arguments go to pytest.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh" test
ruff check tf_cnn_benchmarks cpubench tests bench
exec python -m pytest "$@"
