"""Moving verified objects between the local cache and the remote tier.

`pull` makes the local cache hold binaries named by manifests, asking each
remote (in the order configured) for what is still missing; `push` sends
the binaries a remote lacks.  The trust boundary is here, not in
`simpler_build.remote`: a pulled object is written to the local cache only
when its XXH3-64 equals the fingerprint *and* its SHA-256 equals the local
manifest's (docs/architecture.md "Remote tier").  Without a manifest SHA-256 (schema-1
manifests, a bare fingerprint) the remote's own metadata SHA-256 is used,
which trusts the server; docs/remote.md says so.  A remote failure is a
warning (printed by RemoteStorage); only a binary available nowhere is an
error, and that is the caller's to raise.
"""

from __future__ import annotations

import os
from pathlib import Path

from simpler_build import log
from simpler_build.cache._record import Record
from simpler_build.cache.errors import SourceError
from simpler_build.cache.fingerprint import fingerprint_bytes, sha256_bytes
from simpler_build.elf import header_problem
from simpler_build.files import read_regular
from simpler_build.manifest import ROLES, Manifest, ManifestError, load_manifest

TYPE_CHECKING = False  # `cache fetch` starts here: no typing or dataclasses at import
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any, ClassVar

    from simpler_build.cache.store import ArtifactCache, CacheEntry
    from simpler_build.remote import RemoteStorage


class Wanted(Record):
    """One binary a manifest names: what it must hash to, and where it may already be."""

    _fields = (
        "fingerprint",
        "sha256",
        "size",
        "role",
        "arch",
        "runtime",
        "build_id",
        "manifest",
        "beside",
    )
    __slots__ = _fields
    fingerprint: str
    sha256: str | None
    size: int
    role: str
    arch: str
    runtime: str | None
    build_id: str | None
    manifest: Path
    beside: Path  # the path the manifest gives (may not exist on a fetching runner)

    def __init__(
        self,
        fingerprint: str,
        sha256: str | None,
        size: int,
        role: str,
        arch: str,
        runtime: str | None,
        build_id: str | None,
        manifest: Path,
        beside: Path,
    ) -> None:
        self._assign(locals())  # written out: see Record._assign

    def label(self) -> str:
        return f"{self.role} {self.fingerprint} ({self.beside.name})"

    def put_into(
        self, cache: ArtifactCache, source: Path | bytes, sha256: str | None = None
    ) -> CacheEntry:
        """Put `source` into `cache` as this binary: its fingerprint (checked by put) and
        its metadata.  `sha256` overrides the manifest's (a pull knows the real one)."""
        return cache.put(
            source,
            fingerprint=self.fingerprint,
            arch=self.arch,
            runtime=self.runtime,
            build_id=self.build_id,
            role=self.role,
            sha256=sha256 or self.sha256,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "role": self.role,
            "arch": self.arch,
            "runtime": self.runtime,
            "size": self.size,
            "manifest": str(self.manifest),
        }


def wanted_of(manifest: Manifest) -> list[Wanted]:
    """The three binaries of one manifest (the dispatcher belongs to no single runtime)."""
    out = []
    for role in ROLES:
        rec = manifest.binaries[role]
        out.append(
            Wanted(
                fingerprint=rec.fingerprint,
                sha256=rec.sha256,
                size=rec.size,
                role=role,
                arch=manifest.arch,
                runtime=None if role == "dispatcher" else manifest.runtime,
                build_id=rec.build_id,
                manifest=manifest.path,
                beside=rec.path,
            )
        )
    return out


def collect_manifests(sources: Iterable[str | os.PathLike[str]]) -> list[Manifest]:
    """Load every manifest named by `sources` (manifest files or directories holding them).

    Every manifest is parsed before anything moves, so bad input changes
    nothing; errors are SourceError naming the file.
    """
    from simpler_build.cache.warm import collect_manifests as find

    out = []
    for path in find([Path(source) for source in sources]):
        try:
            out.append(load_manifest(path))
        except ManifestError as exc:
            raise SourceError(exc.path, exc.problem) from None
    return out


def unique(wanted: Iterable[Wanted]) -> list[Wanted]:
    """One Wanted per fingerprint, preferring one that carries a SHA-256.

    Two manifests that record different SHA-256s for one fingerprint cannot
    both be right; the object is then refused (SourceError) rather than guessed.
    """
    by_fp: dict[str, Wanted] = {}
    for w in wanted:
        seen = by_fp.get(w.fingerprint)
        if seen is None or (seen.sha256 is None and w.sha256 is not None):
            by_fp[w.fingerprint] = w
        elif w.sha256 is not None and seen.sha256 is not None and w.sha256 != seen.sha256:
            raise SourceError(
                w.manifest,
                f"{w.role} {w.fingerprint} has sha256 {w.sha256}, but {seen.manifest} "
                f"records {seen.sha256} for the same fingerprint",
            )
    return list(by_fp.values())


# -- pull -------------------------------------------------------------------------------


class PullReport(Record):
    """What a pull did, per distinct object."""

    _fields = (
        "present",
        "pulled",
        "rejected",
        "missing",
        "bytes_pulled",
        "remotes",
        "remote_errors",
    )
    __slots__ = _fields
    _defaults: ClassVar[dict[str, object]] = {"bytes_pulled": 0, "remote_errors": 0}
    _factories: ClassVar[dict[str, Callable[[], object]]] = dict.fromkeys(
        ("present", "pulled", "rejected", "missing", "remotes"), list
    )
    _frozen = False
    present: list[Wanted]  # already in the local cache
    pulled: list[Wanted]  # fetched, verified, cached
    rejected: list[tuple[Wanted, str, str]]  # (w, url, why)
    missing: list[Wanted]  # available nowhere
    bytes_pulled: int
    remotes: list[str]
    remote_errors: int

    @property
    def complete(self) -> bool:
        return not self.missing

    def to_json(self) -> dict[str, Any]:
        return {
            "remotes": self.remotes,
            "present": [w.to_json() for w in self.present],
            "pulled": [w.to_json() for w in self.pulled],
            "rejected": [{**w.to_json(), "remote": u, "problem": p} for w, u, p in self.rejected],
            "missing": [w.to_json() for w in self.missing],
            "bytes_pulled": self.bytes_pulled,
            "remote_errors": self.remote_errors,
        }


def check_pulled(w: Wanted, data: bytes, meta: dict[str, Any] | None) -> str | None:
    """Why a pulled object must be refused, or None when it is the manifest's bytes."""
    actual = fingerprint_bytes(data)
    if actual != w.fingerprint:
        return f"content hashes to {actual}, not {w.fingerprint}"
    if w.sha256 is not None:
        expected, source = w.sha256, f"the manifest {w.manifest}"
    else:
        claimed = meta.get("sha256") if isinstance(meta, dict) else None
        if not isinstance(claimed, str):
            return "no SHA-256 to check against (schema-1 manifest and no server metadata)"
        expected, source = claimed, "the server's metadata (schema-1 manifest: trusting the server)"
    actual_sha = sha256_bytes(data)
    if actual_sha != expected:
        return f"SHA-256 {actual_sha} does not match {expected} from {source}"
    return None


def pull(
    cache: ArtifactCache,
    wanted: Sequence[Wanted],
    remotes: Sequence[RemoteStorage],
    *,
    skip_present: bool = True,
) -> PullReport:
    """Make the local cache hold every wanted object that some remote holds intact."""
    report = PullReport(remotes=[str(r.spec) for r in remotes])
    need: list[Wanted] = []
    for w in unique(wanted):
        if skip_present and cache.contains(w.fingerprint):
            report.present.append(w)
            log.debug(__name__, "%s: already in the local cache", w.label())
        else:
            need.append(w)
    errors_before = sum(r.errors for r in remotes)
    rejected = 0
    for remote in remotes:
        if not need or not remote.usable:
            continue
        by_fp = {w.fingerprint: w for w in need}
        sizes = {fp: w.size for fp, w in by_fp.items()}
        unsigned = {fp for fp, w in by_fp.items() if w.sha256 is None}
        for got in remote.iter_get(list(by_fp), sizes, meta_for=unsigned):
            for fp, obj in got.items():
                want = by_fp.get(fp)
                if want is None:
                    continue
                problem = check_pulled(want, obj.data, obj.meta)
                if problem is not None:
                    rejected += 1
                    report.rejected.append((want, remote.url, problem))
                    log.warn(__name__, f"refused {want.label()} from {remote.url}: {problem}")
                    continue
                want.put_into(cache, obj.data, sha256_bytes(obj.data))
                del by_fp[fp]
                report.pulled.append(want)
                log.info(__name__, "pulled %s from %s", want.label(), remote.url)
                report.bytes_pulled += len(obj.data)
        need = list(by_fp.values())
    report.missing = need
    report.remote_errors = sum(r.errors for r in remotes) - errors_before
    if remotes:
        cache._bump(
            remote_hits=len(report.pulled),
            remote_misses=len(report.missing),
            remote_errors=report.remote_errors,
            remote_rejected=rejected,
            bytes_pulled=report.bytes_pulled,
        )
    return report


# -- push -------------------------------------------------------------------------------


class PushReport(Record):
    """What a push did, per remote and distinct object."""

    _fields = (
        "pushed",
        "present",
        "too_large",
        "read_only",
        "failed",
        "unavailable",
        "bytes_pushed",
    )
    __slots__ = _fields
    _defaults: ClassVar[dict[str, object]] = {"bytes_pushed": 0}
    _factories: ClassVar[dict[str, Callable[[], object]]] = dict.fromkeys(_fields[:6], list)
    _frozen = False
    pushed: list[tuple[str, Wanted]]
    present: list[tuple[str, Wanted]]
    too_large: list[tuple[str, Wanted]]
    read_only: list[str]
    failed: list[str]  # remotes that could not be written
    unavailable: list[Wanted]  # no verified local copy
    bytes_pushed: int

    def to_json(self) -> dict[str, Any]:
        def pairs(items: list[tuple[str, Wanted]]) -> list[dict[str, Any]]:
            return [{**w.to_json(), "remote": url} for url, w in items]

        return {
            "pushed": pairs(self.pushed),
            "present": pairs(self.present),
            "too_large": pairs(self.too_large),
            "read_only": self.read_only,
            "failed": self.failed,
            "unavailable": [w.to_json() for w in self.unavailable],
            "bytes_pushed": self.bytes_pushed,
        }


def verified_bytes(cache: ArtifactCache, w: Wanted) -> bytes | None:
    """The wanted bytes from beside the manifest or from the local cache, checked, or None."""
    try:
        data = read_regular(w.beside)  # one read; _intact hashes exactly these bytes
    except OSError:
        data = b""
    if data and _intact(w, data) and header_problem(data[:64]) is None:
        return data
    cached = cache.get(w.fingerprint)
    if cached is not None:
        try:
            data = cached.read_bytes()
        except OSError:
            return None
        if _intact(w, data):
            return data
    return None


def _intact(w: Wanted, data: bytes) -> bool:
    """Re-check bytes as read (the file may change after it was fingerprinted)."""
    if fingerprint_bytes(data) != w.fingerprint:
        return False
    return w.sha256 is None or sha256_bytes(data) == w.sha256


def push(
    cache: ArtifactCache, wanted: Sequence[Wanted], remotes: Sequence[RemoteStorage]
) -> PushReport:
    """Send every wanted object each writable remote lacks (EXISTS first: idempotent)."""
    report = PushReport()
    objects = unique(wanted)
    errors_before = sum(r.errors for r in remotes)
    for remote in remotes:
        if not remote.writable:
            report.read_only.append(remote.url)
            continue
        have = remote.present([w.fingerprint for w in objects])
        if have is None:
            report.failed.append(remote.url)
            continue
        batch: list[tuple[str, bytes, dict[str, Any]]] = []
        sent: list[Wanted] = []
        for w in objects:
            if w.fingerprint in have:
                report.present.append((remote.url, w))
                continue
            if w.size > remote.spec.max_size:
                report.too_large.append((remote.url, w))
                continue
            data = verified_bytes(cache, w)
            if data is None:
                if w not in report.unavailable:
                    report.unavailable.append(w)
                continue
            meta = {
                "size": len(data),
                "sha256": sha256_bytes(data),
                "arch": w.arch,
                "runtime": w.runtime,
                "build_id": w.build_id,
                "role": w.role,
            }
            batch.append((w.fingerprint, data, meta))
            sent.append(w)
        stored = remote.put_many(batch) if batch else 0
        if batch and not remote.usable:
            report.failed.append(remote.url)
            continue
        report.bytes_pushed += stored
        report.pushed += [(remote.url, w) for w in sent]
    if report.bytes_pushed:
        cache._bump(bytes_pushed=report.bytes_pushed)
    errors = sum(r.errors for r in remotes) - errors_before
    if errors:
        cache._bump(remote_errors=errors)
    return report


__all__ = [
    "PullReport",
    "PushReport",
    "Wanted",
    "check_pulled",
    "collect_manifests",
    "pull",
    "push",
    "unique",
    "verified_bytes",
    "wanted_of",
]
