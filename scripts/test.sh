#!/usr/bin/env bash
# Set up, lint, type-check, run the whole test suite, then the curated mutants (CI runs exactly this).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"

ruff check .
ruff format --check .
# mypy --strict over the package (pyproject.toml [tool.mypy]; mypy is pinned in the test extra).
python scripts/typecheck.py
# Two pytest-xdist workers, a test module each at a time: most tests wait on processes,
# builds and servers, and a single session kept one of CI's two cores idle.
pytest -q -n 2 --dist loadfile "$@"
# The curated mutants (tests/mutants.py): every deliberate bug in a promise of
# docs/architecture.md must be caught by its paired tests.
# Three jobs on two cores: a mutant is mostly a short pytest session waiting on processes.
python tests/mutants.py -j 3
