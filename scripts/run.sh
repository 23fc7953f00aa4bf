#!/usr/bin/env bash
# The README's run command: installs the exporter into .venv and runs it.
# With no arguments it runs the demo: the bundled API simulator with generated jobs, on
# http://localhost:10181/metrics. Any arguments go to maxcompute-exporter instead.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
if [ "$#" -eq 0 ]; then
  set -- --demo
fi
exec .venv/bin/maxcompute-exporter "$@"
