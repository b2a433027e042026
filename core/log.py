"""The `simpler_build` logger hierarchy: silent by default, free where nobody listens.

Each module logs to the logger named after it (`simpler_build.cache.resolve`,
`simpler_build.remote.storage`, ...), all under `simpler_build`, which gets a
`NullHandler` so a program that never configures logging sees nothing (and
Python's last-resort handler never prints our records).  The package never
calls `basicConfig` or adds a handler of its own accord; `enable_stderr` is
for the command line's -v.

`import logging` costs a few milliseconds, and the cache read path (`cache
warm`, `get`, the runtime's binary resolution) does not load it
(tests/cache/test_lean_imports.py).  So this module does not import it at
import time, and `debug`/`info` do nothing unless the `logging` module is
already loaded: a program that never imported logging has configured no
handler, so no record could have been shown anyway.

Warnings a user must see (a remote that is down) go through `warn`: logged
as a WARNING record, and printed on stderr (``simpler-build: warning: ...``)
only when no handler would show the record, so each prints exactly once.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # on the read path: no typing import
if TYPE_CHECKING:
    import logging

#: The package's root logger; every module logger is below it.
ROOT = "simpler_build"
#: Prefix of what the package prints on stderr itself.
PREFIX = "simpler-build"

_ready = False
_cli_handler: logging.Handler | None = None


def get_logger(name: str = ROOT) -> logging.Logger:
    """The logger `name` (a module's `__name__`), the package's NullHandler in place."""
    import logging

    global _ready
    if not _ready:
        root = logging.getLogger(ROOT)
        if not any(type(h) is logging.NullHandler for h in root.handlers):
            root.addHandler(logging.NullHandler())
        _ready = True
    return logging.getLogger(name)


def debug(name: str, message: str, *args: object) -> None:
    """A DEBUG record on logger `name`, only if logging is loaded (see the module doc)."""
    if "logging" in sys.modules:
        get_logger(name).debug(message, *args)


def info(name: str, message: str, *args: object) -> None:
    """An INFO record on logger `name`, only if logging is loaded (see the module doc)."""
    if "logging" in sys.modules:
        get_logger(name).info(message, *args)


def _shown(logger: logging.Logger, level: int) -> bool:
    """Whether a record of `level` on `logger` reaches a handler that shows it (the walk
    `Logger.callHandlers` makes, NullHandlers not counted)."""
    import logging

    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if type(handler) is not logging.NullHandler and level >= handler.level:
                return True
        current = current.parent if current.propagate else None
    return False


def warn(name: str, message: str) -> None:
    """A WARNING record on logger `name`, printed on stderr when no handler shows it.

    A program that silenced the logger (a level above WARNING) sees nothing.
    """
    import logging

    logger = get_logger(name)
    if not logger.isEnabledFor(logging.WARNING):
        return
    logger.warning(message)
    if not _shown(logger, logging.WARNING):
        print(f"{PREFIX}: warning: {message}", file=sys.stderr, flush=True)


def enable_stderr(verbosity: int) -> logging.Handler | None:
    """Show the package's records on stderr: -v INFO, -vv DEBUG (the command line's -v).

    Lines read ``simpler-build: debug: <logger>: <message>``; warnings keep
    the ``simpler-build: warning: <message>`` form they print without logging.
    Calling it again replaces the handler; 0 removes it.  Returns the handler.
    """
    import logging

    global _cli_handler
    root = get_logger(ROOT)
    if _cli_handler is not None:
        root.removeHandler(_cli_handler)
        _cli_handler = None
    if verbosity <= 0:
        root.setLevel(logging.NOTSET)
        return None

    class _Line(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            level = record.levelname.lower()
            if record.levelno >= logging.WARNING:
                return f"{PREFIX}: {level}: {record.getMessage()}"
            return f"{PREFIX}: {level}: {record.name}: {record.getMessage()}"

    level = logging.INFO if verbosity == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(_Line())
    root.addHandler(handler)
    root.setLevel(level)
    _cli_handler = handler
    return handler


__all__ = ["ROOT", "debug", "enable_stderr", "get_logger", "info", "warn"]
