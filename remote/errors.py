"""Errors of the remote tier.

Only configuration is an error a user sees as a failure: a remote that is
down, slow or broken is a warning (docs/architecture.md "Remote tier"), reported by
`RemoteStorage` itself and never raised past it.
"""

from __future__ import annotations

from simpler_build.errors import SimplerError


class RemoteConfigError(SimplerError, ValueError):
    """A remote storage URL (or one of its attributes) that cannot be used.

    Renders as ``<where>: <problem>``, where `where` names the setting it
    came from (``SIMPLER_REMOTE_STORAGE`` or ``--remote``).
    """

    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        self.problem = problem
        super().__init__(f"{where}: {problem}")


__all__ = ["RemoteConfigError"]
