"""Options of the stress suite: a longer, time-bounded run on demand.

By default the suite runs a small fixed number of operations (well under a
minute in CI).  A longer run takes its duration from `--stress-seconds=N` or
from the environment variable SIMPLER_STRESS_SECONDS.  The option is
registered here, which pytest honours when this directory is on the command
line (`pytest tests/stress --stress-seconds=300`); for `pytest --stress-seconds`
from the repository root the same hook must live in tests/conftest.py (pytest
reads options only from conftests it loads at startup), and the environment
variable works everywhere.
"""

from __future__ import annotations

import contextlib
import os

import pytest

ENV_SECONDS = "SIMPLER_STRESS_SECONDS"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register --stress-seconds, unless the root conftest already did (same definition)."""
    with contextlib.suppress(ValueError):  # "option names {...} already added"
        parser.addoption(
            "--stress-seconds",
            type=float,
            default=None,
            metavar="N",
            help=f"run the cache stress test for N seconds instead of a fixed count "
            f"(also ${ENV_SECONDS})",
        )


@pytest.fixture
def stress_seconds(request: pytest.FixtureRequest) -> float | None:
    """Seconds of a long run, or None for the fixed, CI-sized run."""
    value = request.config.getoption("--stress-seconds", default=None)
    if value is None and os.environ.get(ENV_SECONDS):
        try:
            value = float(os.environ[ENV_SECONDS])
        except ValueError:
            raise pytest.UsageError(
                f"{ENV_SECONDS}={os.environ[ENV_SECONDS]!r}: not a number of seconds"
            ) from None
    if value is not None and value <= 0:
        raise pytest.UsageError(f"--stress-seconds={value}: must be positive")
    return value
