"""`simpler-build repro-check`: build the tree twice and prove the bytes do not depend on where.

Two copies of the sources go into temporary directories whose paths differ
in length, each is built with caching off (`--cache-disable`, `cache=0`, and
`CCACHE_DISABLE=1`, so a ccache on PATH or in `CC` cannot stand in for a
compile and pass two copies of one object off as two builds), with a
different `-j`, `build_dir` name and umask, and every file under `lib/` is
compared.  A binary that differs is named with the ELF sections
whose bytes differ (and a manifest with the keys), so a flag that leaks a
path or a time shows where it lands.  Run it after changing a build flag;
docs/reproducible-builds.md explains what the build does to be reproducible.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PROG = "simpler-build repro-check"
#: What a build needs from a checkout (everything else is outputs or tooling).
SOURCES = ("SConstruct", "site_scons", "dispatcher", "runtime")


class _Failure(Exception):
    """The check cannot run (exit 2, `kind` config) or a build failed (exit 1, `kind` build)."""

    def __init__(self, message: str, path: Path, kind: str, code: int) -> None:
        super().__init__(message)
        self.path, self.kind, self.code = path, kind, code


def find_source(given: Path | None) -> Path:
    """The tree to check: --source, else the checkout this package runs from, else the cwd."""
    from simpler_build.build import source_tree

    candidates = [given] if given else [source_tree(), Path.cwd()]
    for c in candidates:
        if c is not None and (c / "SConstruct").is_file():
            return c.resolve()
    where = given or Path.cwd()
    raise _Failure(f"{where}: no SConstruct here (pass --source CHECKOUT)", where, "config", 2)


def _copy_sources(src: Path, dest: Path) -> None:
    dest.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".sconsign*")
    for name in SOURCES:
        path = src / name
        if path.is_dir():
            shutil.copytree(path, dest / name, ignore=ignore)
        elif path.is_file():
            shutil.copy2(path, dest / name)


def _build(src: Path, tree: Path, build_dir: str, jobs: int, umask: int, args: list[str]) -> float:
    """Build the copy `tree` of `src`; seconds taken.  A failure names `src` and the first error."""
    env = {**os.environ, "SIMPLER_CACHE_DIR": str(tree.parent / "cache"), "CCACHE_DISABLE": "1"}
    env.pop("SIMPLER_REMOTE_STORAGE", None)
    cmd = [sys.executable, "-m", "SCons", "-Q", f"-j{jobs}", f"build_dir={build_dir}"]
    cmd += ["cache=0", "--cache-disable", *args]
    start = time.perf_counter()
    proc = subprocess.run(
        cmd,
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        preexec_fn=lambda: os.umask(umask),
    )
    if proc.returncode != 0:
        lines = (proc.stdout + proc.stderr).strip().splitlines() or ["(no output)"]
        first = next((line for line in lines if " error: " in line), lines[-1])
        raise _Failure(f"{src}: the build of its copy failed: {first.strip()}", src, "build", 1)
    return time.perf_counter() - start


def elf_section_diff(a: Path, b: Path) -> list[str]:
    """Names of the ELF sections (or header) whose bytes differ between two files."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        with a.open("rb") as fa, b.open("rb") as fb:
            ea, eb = ELFFile(fa), ELFFile(fb)
            out = []
            if ea.header != eb.header:
                out.append("ELF header")
            secs_a = {s.name: s for s in ea.iter_sections()}
            secs_b = {s.name: s for s in eb.iter_sections()}
            for name in sorted(set(secs_a) | set(secs_b)):
                sa, sb = secs_a.get(name), secs_b.get(name)
                if sa is None or sb is None:
                    out.append(f"{name} (only in one)")
                elif sa.header["sh_type"] != "SHT_NOBITS" and sa.data() != sb.data():
                    out.append(name)
            return out or ["(bytes outside any section)"]
    except (ELFError, OSError):
        return []


def json_diff(a: Any, b: Any, where: str = "") -> list[str]:
    """Dotted keys whose values differ between two JSON documents."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            out += json_diff(a.get(key), b.get(key), f"{where}.{key}" if where else key)
        return out
    return [] if a == b else [where or "(top level)"]


def compare(lib_a: Path, lib_b: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """(files compared, differences) of two lib/ trees."""
    names = sorted(
        {p.relative_to(lib_a).as_posix() for p in lib_a.rglob("*") if p.is_file()}
        | {p.relative_to(lib_b).as_posix() for p in lib_b.rglob("*") if p.is_file()}
    )
    diffs: list[dict[str, Any]] = []
    for name in names:
        a, b = lib_a / name, lib_b / name
        if not (a.is_file() and b.is_file()):
            diffs.append({"file": name, "problem": "built by only one of the two builds"})
        elif a.read_bytes() != b.read_bytes():
            if name.endswith(".json"):
                keys = json_diff(json.loads(a.read_text()), json.loads(b.read_text()))
                diffs.append({"file": name, "problem": "keys differ", "where": keys})
            else:
                sections = elf_section_diff(a, b)
                diffs.append({"file": name, "problem": "bytes differ", "where": sections})
    return names, diffs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=(__doc__ or PROG).splitlines()[0])
    p.add_argument("--arch", choices=("a2a3", "a5", "all"), default="all")
    p.add_argument("--mode", choices=("release", "debug"), default="release")
    p.add_argument("--source", type=Path, help="checkout to check (default: this one)")
    p.add_argument("--keep", action="store_true", help="keep the two build trees")
    p.add_argument("--json", action="store_true", help="one JSON object")
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        src = find_source(args.source)
        work = Path(tempfile.mkdtemp(prefix="simpler-repro-"))
        try:
            one = work / "a" / "src"
            two = work / "b-a-longer-path" / "nested" / "src"
            for tree in (one, two):
                _copy_sources(src, tree)
            build_args = [f"arch={args.arch}", f"mode={args.mode}"]
            t1 = _build(src, one, "build", 1, 0o022, build_args)
            t2 = _build(src, two, "out-of-tree-name", 2, 0o077, build_args)
            sub = ("debug",) if args.mode == "debug" else ()  # SConstruct: debug has its own tree
            names, diffs = compare(
                one.joinpath("build", *sub, "lib"), two.joinpath("out-of-tree-name", *sub, "lib")
            )
        finally:
            if args.keep:
                print(f"{PROG}: kept {work}", file=sys.stderr)
            else:
                shutil.rmtree(work, ignore_errors=True)
    except _Failure as exc:
        from simpler_build.cache.cli import report_error

        return report_error(args.json, PROG, str(exc), exc.code, kind=exc.kind, path=str(exc.path))
    report = {
        "schema_version": 1,  # docs/json.md
        "source": str(src),
        "arch": args.arch,
        "mode": args.mode,
        "files": len(names),
        "differences": diffs,
        "build_seconds": [round(t1, 3), round(t2, 3)],
        "reproducible": not diffs and bool(names),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for d in diffs:
            where = f": {', '.join(d['where'])}" if d.get("where") else ""
            print(f"differs: {d['file']}: {d['problem']}{where}")
        verdict = "all identical" if report["reproducible"] else f"{len(diffs)} differ"
        print(f"repro-check: {len(names)} files, {verdict} (builds {t1:.1f} s, {t2:.1f} s)")
    return 0 if report["reproducible"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
