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
# Two workers per core: the suite waits (for polls, scrape windows, rules) far more than it
# computes (about 5 of the 9-11 core-minutes a 2-core run offers), so a second worker per core
# fills the waits. --dist loadscope keeps each test module on one worker, so a module's
# Prometheus, Alertmanager or simulator is started once. Tests pick their ports with free_port()
# and write only under tmp_path, so workers do not meet. PYTEST_WORKERS=0 runs serially.
CORES=$(nproc 2>/dev/null || echo 2)
exec .venv/bin/python -m pytest -n "${PYTEST_WORKERS:-$((2 * CORES))}" --dist loadscope "$@"
