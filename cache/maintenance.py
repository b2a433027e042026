"""verify, gc, LRU eviction and clear for ArtifactCache.

Kept apart from store.py because none of it is on a build's or a run's hot
path.  Everything that deletes takes the entry's lock first (non-blocking
where a held lock means "a live writer is busy, leave it"), so maintenance is
safe while other processes put and get.

Maintenance must finish even when the tree holds things it does not expect
(a crash leftover, another tool's file, a directory where a file belongs):
otherwise one bad entry would stop eviction and the size bound would never be
enforced again.  So every item is handled on its own; what cannot be used is
removed, moved to quarantine or skipped, and recorded as a `Finding` in the
report.  Nothing is ever followed through a symlink, and nothing outside
``<root>/v1`` is removed except the store's own ``.tmp-*`` files in the root.
FORMAT.md ("What maintenance does with things it does not recognise") is the
contract.

This module is the public surface; one private module per concern does the
work: `_findings` (the reports), `_tree` (the tolerant steps they share),
`_verify`, `_evict`, `_gc` and `_clear`.
"""

from __future__ import annotations

from simpler_build.cache._clear import clear, clear_root
from simpler_build.cache._evict import evict
from simpler_build.cache._findings import (
    QUARANTINED,
    REMOVED,
    SKIPPED,
    ClearReport,
    CorruptEntry,
    Finding,
    GcReport,
    VerifyReport,
)
from simpler_build.cache._gc import (
    DEFAULT_GRACE_SECONDS,
    LOCKED_TEMP_MIN_AGE,
    QUARANTINE_KEEP_SECONDS,
    gc,
    gc_root,
)
from simpler_build.cache._verify import verify

__all__ = [
    "DEFAULT_GRACE_SECONDS",
    "LOCKED_TEMP_MIN_AGE",
    "QUARANTINED",
    "QUARANTINE_KEEP_SECONDS",
    "REMOVED",
    "SKIPPED",
    "ClearReport",
    "CorruptEntry",
    "Finding",
    "GcReport",
    "VerifyReport",
    "clear",
    "clear_root",
    "evict",
    "gc",
    "gc_root",
    "verify",
]
