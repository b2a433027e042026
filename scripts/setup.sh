#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine for simpler-build, idempotently:
# the system xxHash headers the dispatcher links against, a project venv in
# .venv, and the package (editable) with its test extras.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

have_xxhash() { echo '#include <xxhash.h>' | ${CC:-cc} -x c -E - >/dev/null 2>&1; }

if ! have_xxhash; then
    if [ "$(id -u)" = 0 ]; then
        echo "setup: installing libxxhash-dev (the system xxHash library and headers)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libxxhash-dev >/dev/null
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        echo "setup: installing libxxhash-dev with sudo"
        sudo apt-get update -qq
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libxxhash-dev >/dev/null
    else
        echo "setup: error: the xxHash headers are missing; install them with:" >&2
        echo "    sudo apt-get install -y libxxhash-dev" >&2
        exit 1
    fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $($PYTHON --version)"
    "$PYTHON" -m venv .venv
fi
echo "setup: installing simpler-build into .venv"
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
