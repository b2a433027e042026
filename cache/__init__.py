"""Process-shared, content-addressed cache of inner AICPU runtime SOs.

Public names are resolved lazily (PEP 562) so that importing
`simpler_build.cache.fingerprint` -- which the runtime and the manifest
reader do -- does not pull in the store, and `simpler-build cache warm`
starts quickly.  The warm function is `simpler_build.cache.warm.warm` (the
submodule keeps the name `warm`).
"""

from __future__ import annotations

from simpler_build._lazy import lazy_exports

TYPE_CHECKING = False  # `import typing` alone costs about 2 ms of every `cache warm`
if TYPE_CHECKING:
    from simpler_build.cache.errors import (
        CacheError,
        CacheLockError,
        CacheRootError,
        CacheWriteError,
        FingerprintMismatch,
        InvalidFingerprint,
        SourceError,
        UnsafePathError,
    )
    from simpler_build.cache.fingerprint import (
        clear_memo,
        fingerprint_bytes,
        fingerprint_file,
        inner_so_name,
        is_fingerprint,
        memo_stats,
    )
    from simpler_build.cache.maintenance import CorruptEntry, GcReport, VerifyReport
    from simpler_build.cache.paths import default_cache_root, scons_cache_dir
    from simpler_build.cache.store import ArtifactCache, CacheEntry, CacheStats
    from simpler_build.cache.warm import WarmItem, WarmReport

_EXPORTS = {
    "ArtifactCache": "store",
    "CacheEntry": "store",
    "CacheStats": "store",
    "CorruptEntry": "maintenance",
    "GcReport": "maintenance",
    "VerifyReport": "maintenance",
    "WarmItem": "warm",
    "WarmReport": "warm",
    "CacheError": "errors",
    "CacheLockError": "errors",
    "CacheRootError": "errors",
    "CacheWriteError": "errors",
    "FingerprintMismatch": "errors",
    "InvalidFingerprint": "errors",
    "SourceError": "errors",
    "UnsafePathError": "errors",
    "clear_memo": "fingerprint",
    "fingerprint_bytes": "fingerprint",
    "fingerprint_file": "fingerprint",
    "inner_so_name": "fingerprint",
    "is_fingerprint": "fingerprint",
    "memo_stats": "fingerprint",
    "default_cache_root": "paths",
    "scons_cache_dir": "paths",
}

__all__ = [
    "ArtifactCache",
    "CacheEntry",
    "CacheError",
    "CacheLockError",
    "CacheRootError",
    "CacheStats",
    "CacheWriteError",
    "CorruptEntry",
    "FingerprintMismatch",
    "GcReport",
    "InvalidFingerprint",
    "SourceError",
    "UnsafePathError",
    "VerifyReport",
    "WarmItem",
    "WarmReport",
    "clear_memo",
    "default_cache_root",
    "fingerprint_bytes",
    "fingerprint_file",
    "inner_so_name",
    "is_fingerprint",
    "memo_stats",
    "scons_cache_dir",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
