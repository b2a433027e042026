"""The runtime's usage errors: what a caller passed that the runtime refuses.

Each is a `SimplerError` and stays the builtin it was raised as before issue 12
(`GraphError` a `ValueError`, `InputError` a `TypeError`, ...), so `except
SimplerError` handles them with the other toolkit failures while old `except
ValueError` code keeps working.  Messages are one line naming the graph,
input or option.  They take only a message, so an isolated runner
(worker.py) rebuilds them by class on the parent's side.

A device failure is a `DeviceError` instead (runner.py, sim/errors.py);
`RunnerClosedError` is one, because a finalized runner has no device left.
README.md "Errors" lists them all.
"""

from __future__ import annotations

from simpler_build.errors import DeviceError, SimplerError


class GraphError(SimplerError, ValueError):
    """A graph the runtime cannot build or run: a bad buffer or task, no tasks, a kernel
    or block_dim the arch does not have, a prepared graph of another runner."""


class InputError(SimplerError, TypeError):
    """A run's inputs do not bind to the graph's: too many, missing, unknown, given
    twice, or not float32 (without `cast=True`)."""


class InputShapeError(SimplerError, ValueError):
    """An input's shape is not the one the graph declares for it."""


class OptionError(SimplerError, ValueError):
    """An option of a runner or a run (arch, aicpu_threads, block_dim, op_timeout,
    hbm_bytes, the worker's timeouts) or its environment variable is out of range."""


class RunnerClosedError(DeviceError):
    """The runner was finalized: its device is released. Create a new runner."""


__all__ = ["GraphError", "InputError", "InputShapeError", "OptionError", "RunnerClosedError"]
