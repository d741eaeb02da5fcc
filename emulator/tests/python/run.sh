#!/usr/bin/env bash
# twilio-python 9.13 (from PyPI, in a virtual environment this script creates) against the
# emulator's binary: see check_emulator.py. Run from anywhere:
#   emulator/tests/python/run.sh
# Without python3/venv or PyPI it says so and exits 0, unless CI=true, where it fails.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$root"

unavailable() {
  if [[ "${CI:-}" == "true" ]]; then
    echo "error: $*" >&2
    exit 1
  fi
  echo "SKIPPED (not under CI=true): $*" >&2
  exit 0
}

python="$(emulator/tests/python/venv.sh)" || unavailable "twilio-python 9.13 is not available (the reason is above)"

cargo build --quiet -p twilio-call-messages-emulator --bin twilio-call-messages-emulator
# Everything is on 127.0.0.1: keep any proxy of the environment out of it.
NO_PROXY="127.0.0.1,localhost" no_proxy="127.0.0.1,localhost" \
  exec "$python" emulator/tests/python/check_emulator.py \
  "${CARGO_TARGET_DIR:-$root/target}/debug/twilio-call-messages-emulator"
