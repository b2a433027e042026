"""The shared remote tier of the artifact cache: Redis and Redis Cluster.

`simpler_build.remote` is an untrusted byte store keyed by fingerprint; it
verifies nothing and fails nothing.  The cache layer pulls through it and
checks every byte (`simpler_build.cache.transfer`).  Configure it with
`SIMPLER_REMOTE_STORAGE` (see `config.py` for the syntax and docs/remote.md
for the server set-up).
"""

from __future__ import annotations

from simpler_build._lazy import lazy_exports

# Public names resolve on first use (PEP 562): `simpler-build cache warm` imports
# `simpler_build.remote.errors` to recognise a config error, and must not pay for the
# URL parser and the Redis client to do so (issue 9).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from simpler_build.remote.config import (
        REMOTE_ENV,
        RemoteSpec,
        parse_remote_storage,
        parse_url,
        remotes_from_env,
    )
    from simpler_build.remote.errors import RemoteConfigError
    from simpler_build.remote.storage import RemoteObject, RemoteStorage, meta_key, obj_key

_EXPORTS = {
    "REMOTE_ENV": "config",
    "RemoteSpec": "config",
    "parse_remote_storage": "config",
    "parse_url": "config",
    "remotes_from_env": "config",
    "RemoteConfigError": "errors",
    "RemoteObject": "storage",
    "RemoteStorage": "storage",
    "meta_key": "storage",
    "obj_key": "storage",
}


def open_remotes(text: str | None = None, where: str | None = None) -> list[RemoteStorage]:
    """RemoteStorage for each URL in `text` (default: `SIMPLER_REMOTE_STORAGE`)."""
    from simpler_build.remote.config import REMOTE_ENV, parse_remote_storage, remotes_from_env
    from simpler_build.remote.storage import RemoteStorage

    if text is None:
        specs = remotes_from_env()
    else:
        specs = parse_remote_storage(text, REMOTE_ENV if where is None else where)
    return [RemoteStorage(spec) for spec in specs]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


__all__ = [
    "REMOTE_ENV",
    "RemoteConfigError",
    "RemoteObject",
    "RemoteSpec",
    "RemoteStorage",
    "meta_key",
    "obj_key",
    "open_remotes",
    "parse_remote_storage",
    "parse_url",
    "remotes_from_env",
]
