# Sourced by the scripts: create or refresh .venv at the repo root and install the project into it.
# Exactly one TensorFlow is installed, chosen for this host by scripts/tfchoice.py: the `cuda` extra
# (tensorflow[and-cuda]) where an NVIDIA GPU and driver are visible, the `cpu` extra (tensorflow-cpu) elsewhere;
# CPUBENCH_TF=cpu|cuda overrides. A .venv holding both, or the other one, is refused with the command that fixes it.
# A stamp of setup.py's hash and the choice skips the pip call when nothing changed, so re-runs start fast.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
EXTRAS="${1:-}"
PY="${PYTHON:-python3}"
CHOSEN="$("$PY" "$ROOT/scripts/tfchoice.py" choose)" || exit 2
TF_CHOICE="${CHOSEN%% *}"
# What the choice was and why, for host.json (cpubench.host.facts records it under tf_install).
export CPUBENCH_TF_CHOSEN="$CHOSEN"
if [ ! -x "$VENV/bin/python" ]; then
  echo "cpubench: creating $VENV" >&2
  "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.cpubench-installed${EXTRAS:+-$EXTRAS}"
WANT="$(sha256sum "$ROOT/setup.py" | cut -c1-16) tf=$TF_CHOICE"
HAVE=0
"$VENV/bin/python" "$ROOT/scripts/tfchoice.py" check "$TF_CHOICE" "$VENV" || HAVE=$?
[ "$HAVE" != 2 ] || exit 2  # both TensorFlows, or the other one: refused with the fix (one line above)
if [ "$HAVE" = 3 ] || [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "cpubench: installing the project into $VENV (first run takes a few minutes)" >&2
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
  "$VENV/bin/python" -m pip install -q -e "$ROOT[$TF_CHOICE${EXTRAS:+,$EXTRAS}]" >&2
  "$VENV/bin/python" "$ROOT/scripts/tfchoice.py" check "$TF_CHOICE" "$VENV" || exit 2
  echo "$WANT" > "$STAMP"
  # An install with extras holds the plain install too: the other scripts need not reinstall after it.
  [ -z "$EXTRAS" ] || echo "$WANT" > "$VENV/.cpubench-installed"
fi
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
