#!/usr/bin/env bash
# twilio-python 9.13 (from PyPI, in a virtual environment this script creates) against the
# emulator's binary: see check_emulator.py. Run from anywhere:
#   emulator/tests/python/run.sh
# Without python3/venv or PyPI it says so and exits 0, unless CI=true, where it fails.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$root"
venv="${TWILIO_PYTHON_VENV:-$root/target/python-venv}"

unavailable() {
  if [[ "${CI:-}" == "true" ]]; then
    echo "error: $*" >&2
    exit 1
  fi
  echo "SKIPPED (not under CI=true): $*" >&2
  exit 0
}

command -v python3 >/dev/null || unavailable "python3 is not installed"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv" || unavailable "python3 cannot create a virtual environment (python3-venv)"
fi
"$venv/bin/python" -c 'import twilio, sys; sys.exit(0 if twilio.__version__.startswith("9.13.") else 1)' 2>/dev/null \
  || "$venv/bin/pip" install --quiet 'twilio==9.13.*' \
  || unavailable "cannot install twilio==9.13.* from PyPI"

cargo build --quiet -p twilio-call-messages-emulator --bin twilio-call-messages-emulator
# Everything is on 127.0.0.1: keep any proxy of the environment out of it.
NO_PROXY="127.0.0.1,localhost" no_proxy="127.0.0.1,localhost" \
  exec "$venv/bin/python" emulator/tests/python/check_emulator.py \
  "${CARGO_TARGET_DIR:-$root/target}/debug/twilio-call-messages-emulator"
