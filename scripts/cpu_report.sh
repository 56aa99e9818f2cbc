#!/usr/bin/env bash
# Merge benchmark results of many hosts into summary/summary.md (+ results.csv, results.json, plots/).
#
#   scripts/cpu_report.sh                      # every host folder under data/
#   scripts/cpu_report.sh data/ ~/other-site/  # host folders, or folders of them
#   scripts/cpu_report.sh --docs ../site/docs/benchmarks   # also copy summary.md and its plots there
#
# Other options go to `cpubench report` (-o DIR, --baseline HOST, --prices FILE, --no-model-table, --no-plots).
# Why a script: a user who copied host folders from many machines runs one command; the set-up (venv, install) is
# the same as the other scripts' and is skipped when nothing changed.
set -euo pipefail
# Paths are made absolute here, before _venv.sh changes to the repo root, so they mean what the caller meant.
abspath() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }
DATA=()
OPTS=()
while [ $# -gt 0 ]; do
  case "$1" in
    -o|--out|--docs) OPTS+=("$1" "$(abspath "${2:?$1 needs a folder}")"); shift 2 ;;
    --prices) OPTS+=("$1" "$(abspath "${2:?--prices needs a file}")"); shift 2 ;;
    --out=*|--docs=*|--prices=*) OPTS+=("${1%%=*}=$(abspath "${1#*=}")"); shift ;;
    --baseline) OPTS+=("$1" "${2:?--baseline needs a host id}"); shift 2 ;;
    -*) OPTS+=("$1"); shift ;;
    *) DATA+=("$(abspath "$1")"); shift ;;
  esac
done
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
if [ ${#DATA[@]} -eq 0 ]; then
  if ! compgen -G "data/*/host.json" > /dev/null; then
    echo "cpu_report.sh: no host folders under data/; run scripts/cpu_benchmark.sh (or cpubench import-logs) first" >&2
    exit 1
  fi
  DATA=(data)
fi
exec cpubench report "${DATA[@]}" "${OPTS[@]}"
