"""The shared remote tier of the artifact cache: Redis and Redis Cluster.

`simpler_build.remote` is an untrusted byte store keyed by fingerprint; it
verifies nothing and fails nothing.  The cache layer pulls through it and
checks every byte (`simpler_build.cache.transfer`).  Configure it with
`SIMPLER_REMOTE_STORAGE` (see `config.py` for the syntax and docs/remote.md
for the server set-up).
"""

from __future__ import annotations

from simpler_build.remote.config import (
    REMOTE_ENV,
    RemoteSpec,
    parse_remote_storage,
    parse_url,
    remotes_from_env,
)
from simpler_build.remote.errors import RemoteConfigError
from simpler_build.remote.storage import RemoteObject, RemoteStorage, meta_key, obj_key


def open_remotes(text: str | None = None, where: str = REMOTE_ENV) -> list[RemoteStorage]:
    """RemoteStorage for each URL in `text` (default: `SIMPLER_REMOTE_STORAGE`)."""
    specs = remotes_from_env() if text is None else parse_remote_storage(text, where)
    return [RemoteStorage(spec) for spec in specs]


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
