# Sourced by the scripts: create or refresh .venv at the repo root and install the project into it.
# A stamp of setup.py's hash skips the pip call when nothing changed, so re-runs start fast.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
EXTRAS="${1:-}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "cpubench: creating $VENV" >&2
  "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.cpubench-installed${EXTRAS:+-$EXTRAS}"
WANT="$(sha256sum "$ROOT/setup.py" | cut -c1-16)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "cpubench: installing the project into $VENV (first run takes a few minutes)" >&2
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
  "$VENV/bin/python" -m pip install -q -e "$ROOT${EXTRAS:+[$EXTRAS]}" >&2
  echo "$WANT" > "$STAMP"
  # An install with extras holds the plain install too: the other scripts need not reinstall after it.
  [ -z "$EXTRAS" ] || echo "$WANT" > "$VENV/.cpubench-installed"
fi
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
