#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine for simpler-build, idempotently:
# the system packages (xxHash headers, redis-server for the remote-tier
# tests, ccache for the CC="ccache gcc" build test and the suite's compiler cache,
# tests/compiler_cache.py), a project venv in .venv,
# and the package (editable) with every extra: .[all,test].
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

have_xxhash() { echo '#include <xxhash.h>' | ${CC:-cc} -x c -E - >/dev/null 2>&1; }
have_redis() { command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; }
have_ccache() { command -v ccache >/dev/null 2>&1; }

# System packages, each only when missing: the xxHash headers the dispatcher
# links against, and redis-server + redis-cli, which the remote-tier tests
# start on loopback ports (the main job itself needs no server).
missing=()
have_xxhash || missing+=(libxxhash-dev)
have_redis || missing+=(redis-server redis-tools)
have_ccache || missing+=(ccache)

if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "setup: installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        echo "setup: installing ${missing[*]} with sudo"
        sudo apt-get update -qq
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "setup: error: missing system packages; install them with:" >&2
        echo "    sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
fi
if ! have_xxhash; then
    echo "setup: error: the xxHash headers are still missing after installing libxxhash-dev" >&2
    exit 1
fi
if ! have_redis; then
    echo "setup: error: redis-server/redis-cli still missing after installing redis-server" >&2
    exit 1
fi
if ! have_ccache; then
    echo "setup: error: ccache still missing after installing ccache" >&2
    exit 1
fi

# The package's root modules moved from simpler_build/ to core/ after 0.2.0: a checkout
# updated across that move keeps an untracked simpler_build/__pycache__, which
# Python would import as an empty namespace package ahead of the real one.
if [ -d simpler_build ] && [ -z "$(find simpler_build -name '*.py' -print -quit)" ]; then
    echo "setup: removing the stale simpler_build/ left by the move to core/"
    rm -rf simpler_build
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $($PYTHON --version)"
    "$PYTHON" -m venv .venv
fi
echo "setup: installing simpler-build into .venv"
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[all,test]'
