"""What the runtime benches share: the built manifest they time, and private roots.

The benches run as scripts (`python bench/x.py`), so this folder is on sys.path.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from simpler_build.manifest import MANIFEST_NAME


def built_manifest(build_dir: Path, arch: str, runtime: str) -> Path | None:
    """`<build_dir>/lib/<arch>/<runtime>/runtime_binaries.json`, or None after a one-line error."""
    manifest = build_dir / "lib" / arch / runtime / MANIFEST_NAME
    if not manifest.is_file():
        print(f"error: {manifest} not found; run `scons arch={arch}` first", file=sys.stderr)
        return None
    return manifest


@contextmanager
def private_roots() -> Iterator[Path]:
    """A temp dir holding this process's cache and simulated-device roots (children inherit
    them through the environment); removed afterwards: the user's are never touched."""
    scratch = Path(tempfile.mkdtemp(prefix="simpler-bench-"))
    os.environ["SIMPLER_CACHE_DIR"] = str(scratch / "cache")
    os.environ["SIMPLER_SIM_ROOT"] = str(scratch / "sim")
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
