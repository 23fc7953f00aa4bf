#!/usr/bin/env bash
# The README's test command: installs what the tests need, then runs lint and the whole suite.
#   - promtool (Debian package `prometheus`) for `promtool check metrics` and the rule tests;
#   - a virtualenv in .venv with the package and its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null 2>&1; then
  echo "installing the Debian package prometheus (for promtool and the Prometheus server)" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]' -r deploy/requirements-ci.txt

.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest "$@"
