#!/usr/bin/env bash
# Creates .venv from the hash-pinned lock and installs both apps into it in editable mode.
set -euo pipefail
cd "$(dirname "$0")/.."

uv=(uv)
if ! command -v uv >/dev/null 2>&1; then
  echo "bootstrap: installing uv with pip" >&2
  python3 -m pip install --quiet uv || python3 -m pip install --quiet --break-system-packages uv
  # Run it through the interpreter: pip's script folder need not be on PATH.
  uv=(python3 -m uv)
fi

python_bin=${PYTHON:-python3}
[ -x .venv/bin/python ] || "${uv[@]}" venv --quiet --python "$python_bin" .venv
"${uv[@]}" pip sync --quiet --python .venv/bin/python --require-hashes requirements/dev.txt
"${uv[@]}" pip install --quiet --python .venv/bin/python --no-deps -e apps/runtime -e apps/dashboard
touch .venv/.installed
