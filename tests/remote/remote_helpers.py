"""Shared pieces of the remote-tier tests: synthetic builds, the CLI, process pools."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import xxhash

from simpler_build.manifest import MANIFEST_NAME, BinaryRecord, Manifest, dump_manifest
from tests.cache.cache_helpers import elf_header

REPO = Path(__file__).resolve().parents[2]
ROLES = ("dispatcher", "inner_so", "aicore")


def blob(seed: int, size: int) -> bytes:
    """Random bytes behind a host ELF header (push sends only loadable shared objects)."""
    head = elf_header()
    return head + random.Random(seed).randbytes(max(0, size - len(head)))


def synthetic_build(base: Path, manifests: int, size: int, seed: int = 0) -> dict[str, bytes]:
    """`manifests` schema-2 manifests, each naming three distinct random binaries.

    Returns {fingerprint: bytes} of every binary: random bytes behind an ELF
    header, which is all that push and warm look at.
    """
    out: dict[str, bytes] = {}
    for k in range(manifests):
        d = base / f"m{k:04d}"
        d.mkdir(parents=True, exist_ok=True)
        records = {}
        for r, role in enumerate(ROLES):
            data = blob(seed * 1_000_000 + k * 10 + r, size)
            path = d / f"{role}.bin"
            path.write_bytes(data)
            fp = xxhash.xxh3_64_hexdigest(data)
            records[role] = BinaryRecord(
                role=role,
                path=path,
                size=len(data),
                fingerprint=fp,
                build_id=None,
                sha256=hashlib.sha256(data).hexdigest(),
            )
            out[fp] = data
        manifest = Manifest(
            path=d / MANIFEST_NAME, arch="a5", runtime=f"rt{k}", mode="release", binaries=records
        )
        manifest.path.write_text(dump_manifest(manifest))
    return out


def manifests_only(build: Path, dest: Path) -> Path:
    """Copy just the manifests of a tree (what a CI runner that did not build holds)."""
    for m in build.rglob(MANIFEST_NAME):
        target = dest / m.relative_to(build)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(m, target)
    return dest


def machine_env(root: Path, remote: str | None = None, **extra: str) -> dict[str, str]:
    """Environment of one simulated machine: its own HOME, cache root and device root."""
    (root / "home").mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "HOME": str(root / "home"),
        "SIMPLER_CACHE_DIR": str(root / "cache"),
        "SIMPLER_SIM_ROOT": str(root / "sim"),
        **extra,
    }
    env.pop("SIMPLER_REMOTE_STORAGE", None)
    if remote is not None:
        env["SIMPLER_REMOTE_STORAGE"] = remote
    return env


def cli(*args: str, env: dict[str, str], timeout: float = 120.0) -> subprocess.CompletedProcess:
    """`simpler-build cache ARGS` in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "simpler_build.cli", "cache", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def cli_popen(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "simpler_build.cli", "cache", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def objects_in(cache_dir: Path) -> list[Path]:
    """Published objects of a cache root (no hashing)."""
    return sorted((cache_dir / "v1" / "objects").glob("*/simpler_inner_*.so"))


def temp_files(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.rglob(".tmp-*"))


def warnings_in(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "warning: remote storage" in line]
