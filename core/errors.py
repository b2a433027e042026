"""The one exception base of simpler_build, and the shared category bases under it.

A program using the toolkit catches `SimplerError` to handle every failure
the toolkit reports on purpose (a bad cache root, a manifest that does not
parse, a binary that is not an ELF, a faulted device, a bad command line),
while a bug (`TypeError`, `AttributeError`) still propagates.  Each concrete
class also keeps the builtin it has always been (`ManifestError` is a
`ValueError`, `CannError` a `RuntimeError`, `NotRegularFile` an `OSError`),
so code written against the builtin keeps working.  The table of classes is
in README.md "Errors"; tests/test_errors.py checks every public exception
class of the package against it.

This module imports nothing: the cache read path imports it.
"""

from __future__ import annotations


class SimplerError(Exception):
    """Base of every error simpler_build raises on purpose; `str(exc)` is one printable line."""


class DeviceError(SimplerError, RuntimeError):
    """The (simulated) device or a kernel on it failed: CANN errors, faults, kernel failures."""


__all__ = ["DeviceError", "SimplerError"]
