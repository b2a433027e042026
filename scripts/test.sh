#!/usr/bin/env bash
# Set up, lint, and run the whole test suite (CI runs exactly this).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"

ruff check .
ruff format --check .
pytest -q "$@"
