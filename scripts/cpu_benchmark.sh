#!/usr/bin/env bash
# Benchmark this host: set up the venv, run a config's matrix, then write the per-host report.
#
#   scripts/cpu_benchmark.sh                              # the embedded default (configs/cpu-default.yaml)
#   scripts/cpu_benchmark.sh configs/cpu-full.yaml        # another config (a file, or a shipped name: cpu-full)
#   scripts/cpu_benchmark.sh cpu-full --unique-host-id --only 'syn-*'   # further options go to `cpubench run`
#
# Results go to data/<host-id>/ (runs.jsonl, host.json, logs/) and the report to data/<host-id>/summary/.
# Running it again resumes: only missing runs are run (--retry-failed reruns failed ones).
# Why a script: the whole night on a new host is one command; the exit status is the run's (0 all ok, 1 some runs
# failed or timed out, 130 interrupted), and a failing report is reported without hiding it.
set -euo pipefail
abspath() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }
CONFIG=()
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then
  # A file relative to the caller's folder is made absolute; otherwise a shipped name or configs/NAME.yaml.
  if [ -f "$1" ]; then CONFIG=(--config "$(abspath "$1")"); else CONFIG=(--config "$1"); fi
  shift
fi
ARGS=()
DRY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out|--config) ARGS+=("$1" "$(abspath "${2:?$1 needs a path}")"); shift 2 ;;
    --out=*|--config=*) ARGS+=("${1%%=*}=$(abspath "${1#*=}")"); shift ;;
    --dry-run|--print-host-dir) DRY=1; ARGS+=("$1"); shift ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
# The engine builds its training batch-norm kernel with the host's C++ compiler on first use; without one, training
# runs TensorFlow's batch norm (each run's record says which ran), so say it once here where a person reads it.
_cxx="${CXX:-g++}"
command -v "${_cxx%% *}" >/dev/null 2>&1 || echo "cpu_benchmark.sh: no C++ compiler (${_cxx%% *}): training runs" \
  "TensorFlow's batch norm, not the engine's fused kernel; 'sudo apt-get install g++' gives it" >&2
if [ "$DRY" = 1 ]; then
  exec cpubench run "${CONFIG[@]}" "${ARGS[@]}"
fi
HOST_DIR="$(cpubench run "${CONFIG[@]}" "${ARGS[@]}" --print-host-dir)"
status=0
cpubench run "${CONFIG[@]}" "${ARGS[@]}" || status=$?
if [ "$status" = 130 ] || [ "$status" = 2 ]; then
  exit "$status"  # interrupted, or nothing ran (bad config, folder busy): no report
fi
if [ -f "$HOST_DIR/runs.jsonl" ]; then
  report=0
  cpubench report "$HOST_DIR" -o "$HOST_DIR/summary" || report=$?
  if [ "$report" != 0 ]; then
    echo "cpu_benchmark.sh: the report failed (exit $report); the runs are safe in $HOST_DIR;" \
         "retry with: scripts/cpu_report.sh $HOST_DIR -o $HOST_DIR/summary" >&2
    [ "$status" != 0 ] || status=$report
  else
    echo "report: $HOST_DIR/summary/summary.md"
  fi
fi
exit "$status"
