#!/usr/bin/env bash
# Installs the real OpenAI clients the harness drives: a Python venv (openai[realtime] + openai-agents)
# and the Node package folder (openai + ws). Idempotent: skips what is already installed at the pinned
# versions, so CI can call it on every run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
openai_py="3.51.0"
agents_py="0.24.0"

venv="$here/.venv"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
installed() {
    "$venv/bin/python" - "$@" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
for spec in sys.argv[1:]:
    name, want = spec.split("==")
    if version(name) != want:
        sys.exit(1)
import websockets  # the [realtime] extra
PY
}
if installed "openai==$openai_py" "openai-agents==$agents_py"; then
    echo "setup.sh: python clients already at openai $openai_py, openai-agents $agents_py"
else
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "openai[realtime]==$openai_py" "openai-agents==$agents_py"
    echo "setup.sh: installed openai $openai_py, openai-agents $agents_py into $venv"
fi

node_dir="$here/node"
if [ -f "$node_dir/node_modules/openai/package.json" ] \
    && [ "$(node -p "require('$node_dir/node_modules/openai/package.json').version")" = \
         "$(node -p "require('$node_dir/package.json').dependencies.openai")" ]; then
    echo "setup.sh: node clients already installed"
else
    (cd "$node_dir" && npm install --no-audit --no-fund --silent)
    echo "setup.sh: installed node clients into $node_dir/node_modules"
fi
