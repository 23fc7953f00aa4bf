#!/usr/bin/env bash
# The README's test command: installs what the tests need, then runs lint and the whole suite.
#   - promtool (Debian package `prometheus`) for `promtool check metrics` and the rule tests,
#     amtool and Alertmanager (`prometheus-alertmanager`) for the Alertmanager tests;
#   - a virtualenv in .venv with the package and its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: prometheus (promtool, the Prometheus server) and prometheus-alertmanager
# (amtool, the Alertmanager server), installed only when missing.
MISSING=""
command -v promtool >/dev/null 2>&1 || MISSING="$MISSING prometheus"
command -v amtool >/dev/null 2>&1 || MISSING="$MISSING prometheus-alertmanager"
if [ -n "$MISSING" ]; then
  echo "installing the Debian package(s)$MISSING" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $MISSING >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]' -r deploy/requirements-ci.txt

.venv/bin/ruff check .
.venv/bin/ruff format --check .
# One worker per core (-n auto); --dist loadscope keeps each test module on one worker, so a
# module's Prometheus, Alertmanager or simulator is started once. Tests pick their ports with
# free_port() and write only under tmp_path, so workers do not meet. `-n 0` runs serially.
exec .venv/bin/python -m pytest -n auto --dist loadscope "$@"
