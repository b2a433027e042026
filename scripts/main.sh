#!/usr/bin/env bash
# The main job: set up, build both arches, warm the artifact cache from the
# build, and run the sample on the simulated device.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"

scons -j"$(nproc)" arch=all
simpler-build cache warm build
for arch in a2a3 a5; do
    python examples/vector_add.py --arch "$arch" --runs 100
done
