#!/usr/bin/env bash
# Prints the path of a python with twilio-python 9.13, in a virtual environment this script
# creates when missing (from PyPI): shared by run.sh and the SDK's twilio-python test
# (tests/it/webhook_python.rs). When python3, venv or PyPI is unavailable it says why on stderr
# and exits 2; the caller decides whether that fails (CI=true) or skips.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
venv="${TWILIO_PYTHON_VENV:-$root/target/python-venv}"

unavailable() {
  echo "$*" >&2
  exit 2
}

command -v python3 >/dev/null || unavailable "python3 is not installed"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv" >&2 || unavailable "python3 cannot create a virtual environment (python3-venv)"
fi
"$venv/bin/python" -c 'import twilio, sys; sys.exit(0 if twilio.__version__.startswith("9.13.") else 1)' 2>/dev/null \
  || "$venv/bin/pip" install --quiet 'twilio==9.13.*' >&2 \
  || unavailable "cannot install twilio==9.13.* from PyPI"
echo "$venv/bin/python"
