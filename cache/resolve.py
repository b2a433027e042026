"""Where each binary of a manifest comes from: beside it, the local cache, or a remote.

docs/architecture.md "The cache is the read path": the file beside the manifest when it
hashes to the recorded fingerprint; otherwise the local cache entry (a
verified `get`, counted as a hit); otherwise a verified pull from the
configured remotes; otherwise `BinaryUnavailable`, one line naming the
binary, its fingerprint, the manifest and the commands that would fill it.
A directory of manifests alone is therefore enough to run.
"""

from __future__ import annotations

import sys
from pathlib import Path

from simpler_build.cache.fingerprint import fingerprint_file
from simpler_build.manifest import ROLES, Manifest

TYPE_CHECKING = False  # on the runtime's start-up path: no typing import
if TYPE_CHECKING:
    from collections.abc import Sequence

    from simpler_build.cache.store import ArtifactCache
    from simpler_build.cache.transfer import Wanted
    from simpler_build.remote import RemoteStorage


def _debug(message: str, *args: object) -> None:
    """`log.debug` on this module's logger; the log module itself loads only when logging
    is loaded (simpler_build/log.py: without it no handler could show the record)."""
    if "logging" in sys.modules:
        from simpler_build import log

        log.debug(__name__, message, *args)


def _beside(beside: Path, fingerprint: str) -> tuple[Path | None, str]:
    """The manifest's own path when it is a regular file with the recorded fingerprint,
    else None and why not (for the miss message)."""
    try:
        actual = fingerprint_file(beside)  # refuses a FIFO or device without blocking
    except FileNotFoundError:
        return None, "not beside the manifest"
    except OSError as exc:
        return None, f"{beside} {exc.strerror or exc}"
    if actual != fingerprint:
        return None, f"{beside} hashes to {actual}"
    return beside, ""


def fill_hint(manifest: Manifest) -> str:
    """The commands that would make a manifest's binaries available."""
    return (
        f"`scons arch={manifest.arch} runtime={manifest.runtime}` to build it, or "
        f"`simpler-build cache fetch {manifest.path}` to pull it from a remote"
    )


def resolve(
    manifest: Manifest,
    cache: ArtifactCache | None = None,
    remotes: Sequence[RemoteStorage] | None = None,
) -> dict[str, Path]:
    """role -> path of verified bytes for every binary of `manifest`.

    `cache` defaults to the default cache root, `remotes` to
    `SIMPLER_REMOTE_STORAGE`.  Raises BinaryUnavailable for the first
    binary found nowhere.
    """
    out: dict[str, Path] = {}
    pending: list[Wanted] = []
    why: dict[str, str] = {}
    for role in ROLES:
        rec = manifest.binaries[role]
        path, why[role] = _beside(rec.path, rec.fingerprint)
        if path is not None:
            _debug("%s %s (%s): beside the manifest", role, rec.fingerprint, rec.path.name)
            out[role] = path
    if len(out) == len(ROLES):
        return out  # the first run's case: neither the transfer code nor the store loads
    from simpler_build.cache.transfer import pull, wanted_of

    for w in wanted_of(manifest):
        if w.role in out:
            continue
        if cache is None:  # only now: binaries beside their manifest never load the store
            from simpler_build.cache.store import ArtifactCache

            cache = ArtifactCache()
        path = cache.get(w.fingerprint)
        outcome = "hit" if path is not None else "miss"
        _debug("%s: cache %s (%s)", w.label(), outcome, why[w.role])
        if path is None:
            pending.append(w)
        else:
            out[w.role] = path
    if pending:
        assert cache is not None  # made for the first binary not beside the manifest
        if remotes is None:
            from simpler_build.remote import open_remotes

            remotes = open_remotes()
        if remotes:
            pull(cache, pending, remotes, skip_present=False)
        for w in pending:
            path = cache.get(w.fingerprint)
            if path is None:
                where = f"{why[w.role]}, not in the cache {cache.root}"
                if remotes:
                    where += " and not intact on " + " ".join(str(r.spec) for r in remotes)
                from simpler_build.cache.errors import BinaryUnavailable

                raise BinaryUnavailable(
                    manifest.path,
                    f"{w.role} {w.fingerprint} ({w.beside.name}) is available nowhere: "
                    f"{where}; run {fill_hint(manifest)}",
                )
            _debug("%s: pulled from a remote", w.label())
            out[w.role] = path
    return out


__all__ = ["fill_hint", "resolve"]
