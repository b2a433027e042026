"""Build timings: cold clean build, clean build from a warm SCons CacheDir, no-op rebuild,
and the no-op rebuild of a tree with many kernels.

    python bench/build_bench.py [--repeat N] [--jobs J] [--kernels K] [--before REV] [--json]

Each repeat copies the sources into two fresh checkouts under a private cache
root: the first builds `arch=all` cold, the second (a "clean checkout"
elsewhere) builds from the CacheDir the first filled, then rebuilds with
nothing changed.  Medians of N repeats; the user's cache is never touched.

The scaling row (issue 9): a copy of the tree gets K generated AICore
kernels per arch (one C file each, compiled into the arch's kernel ELF), is
built once, and its no-op rebuild is timed with and without SCons's
`--implicit-cache`, next to the floor of an SConstruct that declares
nothing.  With `--before REV` the same is measured on that revision's tree
(`git archive`), e.g. the commit before the compile database stopped
rendering every command on each run.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


SOURCES = ("SConstruct", "site_scons", "dispatcher", "runtime")


def checkout(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in SOURCES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def timed_scons(cwd: Path, args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "SCons", "-Q", *args],
        cwd=cwd,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


#: The line of runtime/SConscript (any revision) the generated kernels are appended after.
KERNEL_ANCHOR = re.compile(r"^kernel_sources = \[[^\n]*\]\n", re.MULTILINE)


def add_kernels(tree: Path, count: int) -> None:
    """`count` generated kernels, each its own C file, in every arch's AICore ELF."""
    gen = tree / "runtime" / "aicore" / "generated"
    gen.mkdir()
    for k in range(count):
        (gen / f"gen_kernel_{k:04d}.c").write_text(
            '#include "simpler_abi.h"\n'
            f"int32_t simpler_generated_kernel_{k}(const SimplerKernelArgs *a, uint32_t b,"
            " uint32_t n) {\n"
            f"    (void)a; return (int32_t)((b + n) * {k + 1}u);\n}}\n"
        )
    sconscript = tree / "runtime" / "SConscript"
    text = sconscript.read_text()
    found = KERNEL_ANCHOR.findall(text)
    if len(found) != 1:
        raise SystemExit(f"build_bench: {sconscript}: cannot find the kernel source list")
    sources = [f"aicore/generated/gen_kernel_{k:04d}.c" for k in range(count)]
    sconscript.write_text(text.replace(found[0], found[0] + f"kernel_sources += {sources!r}\n"))


def archive(rev: str, dest: Path) -> Path:
    """The tree of git revision `rev` (the build sources only) in `dest`."""
    dest.mkdir(parents=True)
    data = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", rev, *SOURCES],
        check=True,
        capture_output=True,
    ).stdout
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def bench_many_kernels(root: Path, count: int, repeat: int, before: str | None) -> dict:
    """No-op rebuild of trees with `count` generated kernels per arch, next to the floor.

    Every tree is built first; then the no-op runs are interleaved (each tree,
    with and without --implicit-cache, and the floor, in turn) so that a change
    in machine load during the run hits every figure alike.
    """
    env = {**os.environ, "SIMPLER_CACHE_DIR": str(root / "cache-kernels")}
    empty = root / "empty"
    empty.mkdir()
    (empty / "SConstruct").write_text("")
    trees = {"this tree": checkout(root / "k-now")}
    if before:
        trees[f"before ({before})"] = archive(before, root / "k-before")
    for tree in trees.values():
        add_kernels(tree, count)
        timed_scons(tree, ["-j2", "arch=all"], env)  # the build itself, not timed
        timed_scons(tree, ["-j2", "arch=all", "--implicit-cache"], env)  # records the deps
    runs: dict[tuple[str, str], list[float]] = {}
    for _ in range(repeat):
        runs.setdefault(("floor", ""), []).append(timed_scons(empty, ["-j2", "arch=all"], env))
        for label, tree in trees.items():
            for mode, extra in (("noop_s", []), ("noop_implicit_cache_s", ["--implicit-cache"])):
                runs.setdefault((label, mode), []).append(
                    timed_scons(tree, ["-j2", "arch=all", *extra], env)
                )
    rows: dict[str, dict[str, float]] = {}
    for (label, mode), times in runs.items():
        if label != "floor":
            rows.setdefault(label, {})[mode] = statistics.median(times)
    return {
        "kernels_per_arch": count,
        "floor_empty_sconstruct_s": statistics.median(runs[("floor", "")]),
        "trees": rows,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--kernels", type=int, default=300, help="generated kernels per arch")
    parser.add_argument("--before", metavar="REV", help="also measure this git revision's tree")
    parser.add_argument("--only-kernels", action="store_true", help="only the kernels row")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    opts = parser.parse_args()
    jobs = f"-j{opts.jobs}"
    if opts.only_kernels:
        with tempfile.TemporaryDirectory(prefix="simpler-build-bench-") as tmp:
            many = bench_many_kernels(Path(tmp), opts.kernels, opts.repeat, opts.before)
        return _print_kernels(many, opts.json, {})

    cold, warm, noop = [], [], []
    with tempfile.TemporaryDirectory(prefix="simpler-build-bench-") as tmp:
        root = Path(tmp)
        for i in range(opts.repeat):
            env = {**os.environ, "SIMPLER_CACHE_DIR": str(root / f"cache{i}")}
            first, second = checkout(root / f"a{i}"), checkout(root / f"b{i}")
            cold.append(timed_scons(first, [jobs, "arch=all"], env))
            warm.append(timed_scons(second, [jobs, "arch=all"], env))
            noop.append(timed_scons(second, [jobs, "arch=all"], env))

        many = bench_many_kernels(root, opts.kernels, opts.repeat, opts.before)

    c, w, n = (statistics.median(x) for x in (cold, warm, noop))
    base = {
        "jobs": opts.jobs,
        "repeat": opts.repeat,
        "cold_s": c,
        "warm_cachedir_s": w,
        "noop_s": n,
    }
    if not opts.json:
        print(f"build_bench: arch=all {jobs}, median of {opts.repeat}")
        print(f"  clean build, cold CacheDir      : {c:7.3f} s")
        print(f"  clean build, warm CacheDir      : {w:7.3f} s   ({c / w:.1f}x faster than cold)")
        print(f"  no-op rebuild                   : {n:7.3f} s")
    return _print_kernels(many, opts.json, base)


def _print_kernels(many: dict, as_json: bool, base: dict) -> int:
    if as_json:
        print(json.dumps({**base, "many_kernels": many}, indent=2, sort_keys=True))
        return 0
    floor = many["floor_empty_sconstruct_s"]
    print(
        f"  no-op with {many['kernels_per_arch']} extra kernels per arch (-j2 arch=all);"
        f" floor: empty SConstruct {floor:.3f} s"
    )
    for label, row in many["trees"].items():
        plain, implicit = row["noop_s"], row["noop_implicit_cache_s"]
        print(
            f"    {label:28}: {plain:7.3f} s | --implicit-cache {implicit:7.3f} s"
            f" ({implicit / plain:.2f}x)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
