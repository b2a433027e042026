"""Packaging steps pyproject.toml cannot declare (all metadata lives there).

1. The SCons tree at the checkout root -- SConstruct, site_scons/ and
   dispatcher/ -- belongs to no Python package, yet an installed toolkit needs
   it to build (`simpler-build build`).  The wheel puts it inside
   `simpler_build/`, beside `simpler_build/runtime/` (whose SConscript and C
   sources are package data), so the installed package folder is itself a
   source tree with the checkout's shape: SConstruct, site_scons/,
   dispatcher/, runtime/.  An editable install builds from the checkout
   instead, so nothing is copied then.
2. setuptools' build folder moves from build/ to .setuptools-build/: SCons
   owns build/ (build/lib/<arch>/...), and a shared build/lib would put the
   SCons outputs into the wheel as top-level a2a3/ and a5/ folders, while pip
   would write into the SCons tree.
"""

from __future__ import annotations

import os
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
#: Checkout-root parts of the SCons tree, copied under simpler_build/ in the wheel.
SCONS_TREE = ("SConstruct", "site_scons", "dispatcher")
SKIP_PARTS = {"__pycache__"}
SKIP_SUFFIXES = {".pyc", ".pyo"}


def scons_tree_files() -> list[str]:
    """The SCons tree's files, relative to the checkout root, sorted (a stable wheel)."""
    files = []
    for name in SCONS_TREE:
        top = HERE / name
        candidates = [top] if top.is_file() else sorted(top.rglob("*"))
        for path in candidates:
            rel = path.relative_to(HERE)
            if (
                path.is_file()
                and not SKIP_PARTS & set(rel.parts)
                and path.suffix not in SKIP_SUFFIXES
            ):
                files.append(rel.as_posix())
    return files


class BuildPyWithSConsTree(build_py):
    """build_py that also copies the SCons tree into the package (not in editable mode)."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        package_dir = os.path.join(self.build_lib, "simpler_build")
        for rel in scons_tree_files():
            dest = os.path.join(package_dir, rel)
            self.mkpath(os.path.dirname(dest))
            self.copy_file(str(HERE / rel), dest, preserve_mode=False)


setup(
    cmdclass={"build_py": BuildPyWithSConsTree},
    options={"build": {"build_base": ".setuptools-build"}},
)
