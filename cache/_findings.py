"""The reports of verify, gc and clear, and the `Finding`s they share.

Maintenance never stops on a thing it cannot use: it records a `Finding`
(skipped, removed or quarantined) and goes on (cache/FORMAT.md, "What
maintenance does with things it does not recognise").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simpler_build import log

if TYPE_CHECKING:
    from simpler_build.cache.store import CacheEntry

#: Every maintenance module logs under the public module's name, whichever private
#: module does the work, so a logging filter set on it keeps working.
LOGGER = "simpler_build.cache.maintenance"

SKIPPED = "skipped"
REMOVED = "removed"
QUARANTINED = "quarantined"


@dataclass(frozen=True)
class Finding:
    """Something maintenance found unusable, and what it did: skipped, removed or quarantined."""

    path: Path
    reason: str
    action: str
    moved_to: Path | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": str(self.path), "reason": self.reason}
        if self.moved_to is not None:
            out["moved_to"] = str(self.moved_to)
        return out

    def line(self) -> str:
        """One line for the command line: `<action>: <path>: <reason>`."""
        where = f" (moved to {self.moved_to})" if self.moved_to is not None else ""
        return f"{self.action}: {self.path}: {self.reason}{where}"


@dataclass
class _Findings:
    """What a maintenance run could not use; shared by every report."""

    findings: list[Finding] = field(default_factory=list)

    def note(self, path: Path, reason: str, action: str, moved_to: Path | None = None) -> None:
        self.findings.append(Finding(Path(path), reason, action, moved_to))
        log.info(LOGGER, "%s %s: %s", action, path, reason)

    def _of(self, action: str) -> list[Finding]:
        return [f for f in self.findings if f.action == action]

    @property
    def skipped(self) -> list[Finding]:
        """Left in place: busy, too young to judge, or it could not be removed."""
        return self._of(SKIPPED)

    @property
    def removed_unknown(self) -> list[Finding]:
        """Unknown or wrong-type things that were deleted."""
        return self._of(REMOVED)

    @property
    def quarantined_unknown(self) -> list[Finding]:
        """Wrong-type things at the store's names that were moved to quarantine/."""
        return self._of(QUARANTINED)

    def _findings_json(self) -> dict[str, Any]:
        return {
            "skipped": [f.to_json() for f in self.skipped],
            "removed_unknown": [f.to_json() for f in self.removed_unknown],
            "quarantined_unknown": [f.to_json() for f in self.quarantined_unknown],
        }


@dataclass
class CorruptEntry:
    fingerprint: str
    path: Path
    problem: str
    #: Where repair moved the object (None when not repaired or only metadata was rewritten).
    quarantined_to: Path | None = None
    repaired: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "path": str(self.path),
            "problem": self.problem,
            "quarantined_to": str(self.quarantined_to) if self.quarantined_to else None,
            "repaired": self.repaired,
        }


@dataclass
class VerifyReport(_Findings):
    checked: int = 0
    ok: list[str] = field(default_factory=list)
    corrupt: list[CorruptEntry] = field(default_factory=list)
    #: Fingerprints asked for (or malformed) that are not in the store.
    missing: list[str] = field(default_factory=list)
    #: Listed, then gone before they could be checked: evicted meanwhile, not corrupt.
    gone: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.corrupt

    def to_json(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "ok": self.ok,
            "corrupt": [c.to_json() for c in self.corrupt],
            "missing": self.missing,
            "gone": self.gone,
            **self._findings_json(),
        }


@dataclass
class GcReport(_Findings):
    temp_removed: list[Path] = field(default_factory=list)
    orphan_meta_removed: list[Path] = field(default_factory=list)
    orphan_locks_removed: int = 0
    quarantine_removed: int = 0
    evicted: list[CacheEntry] = field(default_factory=list)
    bytes_before: int = 0
    bytes_after: int = 0
    max_bytes: int | None = None
    #: Whole-root gc (`gc_root`): the SCons CacheDir's part and every byte under the root.
    scons_evicted: list[Path] = field(default_factory=list)
    bytes_scons_evicted: int = 0
    scons_temp_removed: int = 0
    scons_quarantine_removed: int = 0
    root_bytes_before: int = 0
    root_bytes_after: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "scons_evicted": [str(p) for p in self.scons_evicted],
            "bytes_scons_evicted": self.bytes_scons_evicted,
            "scons_temp_removed": self.scons_temp_removed,
            "scons_quarantine_removed": self.scons_quarantine_removed,
            "root_bytes_before": self.root_bytes_before,
            "root_bytes_after": self.root_bytes_after,
            "temp_removed": [str(p) for p in self.temp_removed],
            "orphan_meta_removed": [str(p) for p in self.orphan_meta_removed],
            "orphan_locks_removed": self.orphan_locks_removed,
            "quarantine_removed": self.quarantine_removed,
            "evicted": [e.fingerprint for e in self.evicted],
            "bytes_evicted": sum(e.size for e in self.evicted),
            "bytes_before": self.bytes_before,
            "bytes_after": self.bytes_after,
            "max_bytes": self.max_bytes,
            **self._findings_json(),
        }


@dataclass
class ClearReport(_Findings):
    #: Objects removed (including non-regular things planted at object names).
    removed: int = 0
    #: SCons CacheDir entries removed (`clear_root`).
    scons_removed: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "removed": self.removed,
            "scons_removed": self.scons_removed,
            **self._findings_json(),
        }
