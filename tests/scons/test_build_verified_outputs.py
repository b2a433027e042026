"""Build outputs are checked against what the build recorded, not trusted once built.

SCons alone decides from the sources' signatures that a target is up to date,
so a damaged binary, or one a killed build left behind, was kept and then
blessed by the manifest writer and published to the artifact cache.  These
tests damage real build outputs and check that the next build puts the right
bytes back, and that the manifest writer refuses bytes its producer did not
make (docs/build-integrity.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xxhash

from simpler_build.cache import ArtifactCache
from simpler_build.manifest import MANIFEST_NAME, load_manifest
from tests.conftest import scons

ONE = ("arch=a2a3", "runtime=host_build_graph")
RUNTIME_DIR = Path("lib", "a2a3", "host_build_graph")
INNER_SO = RUNTIME_DIR / "libsimpler_inner_host_build_graph.so"


def flip_byte_keep_mtime(path: Path) -> bytes:
    """Damage a file in place as bit rot would: same size, one byte flipped, mtime restored."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    return bytes(data)


def build(project: Path, build_dir: Path, cache_root: Path, *args: str, check: bool = True):
    return scons(
        *ONE,
        f"build_dir={build_dir}",
        *args,
        cwd=project,
        env={"SIMPLER_CACHE_DIR": str(cache_root)},
        check=check,
    )


def assert_manifest_records(build_dir: Path, expected: bytes) -> None:
    record = load_manifest(build_dir / RUNTIME_DIR).inner_so
    assert record.fingerprint == xxhash.xxh3_64_hexdigest(expected)
    assert record.sha256 == hashlib.sha256(expected).hexdigest()
    assert record.size == len(expected)


@pytest.mark.parametrize("cachedir", ["--cache-disable", "--cache-readonly"])
def test_damaged_inner_so_is_rebuilt_not_blessed(
    project_copy: Path, tmp_path: Path, cachedir: str
) -> None:
    """Relinked without the CacheDir, or retrieved (verified) from it."""
    build_dir, root = tmp_path / "b", tmp_path / "cache"
    build(project_copy, build_dir, root)
    so = build_dir / INNER_SO
    good = so.read_bytes()
    damaged = flip_byte_keep_mtime(so)

    query = build(project_copy, build_dir, root, "-q", check=False)
    assert query.returncode != 0, "a damaged output is not up to date"

    repair = build(project_copy, build_dir, root, cachedir)
    assert so.read_bytes() == good
    assert_manifest_records(build_dir, good)
    assert not ArtifactCache(root).contains(xxhash.xxh3_64_hexdigest(damaged))
    assert build(project_copy, build_dir, root, "-q", check=False).returncode == 0
    for proc in (query, repair):
        assert f"{so} is not the file its last build produced" in proc.stderr
    if cachedir == "--cache-readonly":
        assert f"Retrieved `{so}' from cache" in repair.stdout


def test_stat_shortcut_does_not_hide_a_rewrite_that_restores_mtime(
    project_copy: Path, tmp_path: Path
) -> None:
    """Once a file is remembered as verified, a same-size rewrite with its old mtime is caught."""
    build_dir, root = tmp_path / "b", tmp_path / "cache"
    build(project_copy, build_dir, root)
    time.sleep(2.2)  # past the racy window: the next check may remember the files
    build(project_copy, build_dir, root)
    table = json.loads((build_dir / ".simpler-verified.json").read_text())
    assert str(INNER_SO) in table["files"], "the check remembers verified files"
    so = build_dir / INNER_SO
    good = so.read_bytes()
    flip_byte_keep_mtime(so)

    build(project_copy, build_dir, root)
    assert so.read_bytes() == good
    assert_manifest_records(build_dir, good)


def test_killed_build_then_reverted_edit_gives_the_old_bytes(
    project_copy: Path, tmp_path: Path
) -> None:
    """Build B's outputs are on disk but its signatures never were (SIGKILL); then A again.

    SCons writes .sconsign once, at the end of a build, so a build killed
    after linking leaves the new objects and SO beside the old database.
    Restoring the database from before build B reproduces exactly that.
    """
    build_dir, root = tmp_path / "b", tmp_path / "cache"
    build(project_copy, build_dir, root)
    so = build_dir / INNER_SO
    good = so.read_bytes()
    sconsign = build_dir / ".sconsign.dblite"
    before_b = sconsign.read_bytes()

    source = project_copy / "runtime" / "aicpu" / "host_build_graph.c"
    original = source.read_text()
    source.write_text(original + '\n__attribute__((used)) static const char edit[] = "edit B";\n')
    build(project_copy, build_dir, root)
    assert so.read_bytes() != good, "the edit must change the inner SO"

    sconsign.write_bytes(before_b)  # killed: build B's signatures were never written
    source.write_text(original)  # the edit is reverted
    build(project_copy, build_dir, root)
    assert so.read_bytes() == good
    assert_manifest_records(build_dir, good)
    assert build(project_copy, build_dir, root, "-q", check=False).returncode == 0


def _symlink_to_dispatcher(path: Path, build_dir: Path) -> None:
    path.unlink()
    path.symlink_to(build_dir / "lib" / "a2a3" / "dispatcher" / "libsimpler_aicpu_dispatcher.so")


def _fifo(path: Path, build_dir: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _edited_manifest(path: Path, build_dir: Path) -> None:
    manifest = build_dir / RUNTIME_DIR / MANIFEST_NAME
    text = manifest.read_text()
    fp = load_manifest(manifest).inner_so.fingerprint
    manifest.write_text(text.replace(fp, "0123456789abcdef"))


@pytest.mark.parametrize(
    "damage",
    [_symlink_to_dispatcher, _fifo, _edited_manifest],
    ids=["symlink-to-another-binary", "fifo", "hand-edited-manifest"],
)
def test_any_replaced_output_is_rebuilt(project_copy: Path, tmp_path: Path, damage: object) -> None:
    """Variants of the class: an output replaced by a link, a FIFO (no hang), an edited manifest."""
    build_dir, root = tmp_path / "b", tmp_path / "cache"
    build(project_copy, build_dir, root)
    so = build_dir / INNER_SO
    good = so.read_bytes()
    manifest = build_dir / RUNTIME_DIR / MANIFEST_NAME
    good_manifest = manifest.read_bytes()
    damage(so, build_dir)  # type: ignore[operator]

    proc = subprocess.run(
        [sys.executable, "-m", "SCons", "-Q", *ONE, f"build_dir={build_dir}"],
        cwd=project_copy,
        env={**os.environ, "SIMPLER_CACHE_DIR": str(root)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not so.is_symlink() and so.read_bytes() == good
    assert manifest.read_bytes() == good_manifest
    assert_manifest_records(build_dir, good)


TAMPER = '''
def _tamper(target, source, env):
    """Another process rewrites the binary after its build step, before the manifest."""
    path = source[0].get_abspath()
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(path, "wb").write(bytes(data))
    open(target[0].get_abspath(), "w").write("tampered\\n")
    return 0

'''


@pytest.mark.parametrize(
    ("victim", "binary"),
    [("inner", INNER_SO), ("aicore_copy", RUNTIME_DIR / "aicore_kernels.elf")],
    ids=["linked-inner-so", "installed-aicore-elf"],
)
def test_manifest_writer_refuses_bytes_its_producer_did_not_make(
    project_copy: Path, tmp_path: Path, victim: str, binary: Path
) -> None:
    sconscript = project_copy / "runtime" / "SConscript"
    text = sconscript.read_text()
    anchor = "    nodes += [inner, aicore_copy, manifest]\n"
    assert anchor in text and "\nnodes = [aicore]\n" in text
    text = text.replace("\nnodes = [aicore]\n", "\n" + TAMPER + "nodes = [aicore]\n")
    text = text.replace(
        anchor,
        f"    tamper = renv.Command(os.path.join(out_dir, 'tamper'), {victim}, _tamper)\n"
        "    renv.Depends(manifest, tamper)\n" + anchor,
    )
    sconscript.write_text(text)
    build_dir, root = tmp_path / "b", tmp_path / "cache"
    path = build_dir / binary

    proc = build(project_copy, build_dir, root, "--cache-disable", check=False)
    assert proc.returncode != 0
    refusals = [line for line in proc.stderr.splitlines() if "not the file its build" in line]
    assert len(refusals) == 1 and str(path) in refusals[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (build_dir / RUNTIME_DIR / MANIFEST_NAME).exists()
    damaged = path.read_bytes()
    assert not ArtifactCache(root).contains(xxhash.xxh3_64_hexdigest(damaged))

    # Without the tampering step, the next build replaces the damaged file.
    sconscript.write_text(text.replace("    renv.Depends(manifest, tamper)\n", ""))
    build(project_copy, build_dir, root, "--cache-disable")
    assert path.read_bytes() != damaged
    record = load_manifest(build_dir / RUNTIME_DIR).binaries
    assert any(
        r.path == path and r.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        for r in record.values()
    )


DAMAGE_DURING_RUN = '''
def _damage_if_asked(target, source, env, victim):
    """Runs every build; with SIMPLER_TEST_DAMAGE set it damages an up-to-date binary."""
    if os.environ.get("SIMPLER_TEST_DAMAGE"):
        path = victim[0].get_abspath()
        data = bytearray(open(path, "rb").read())
        data[len(data) // 2] ^= 0xFF
        open(path, "wb").write(bytes(data))
    open(target[0].get_abspath(), "w").write("same every run\\n")
    return 0

'''


def test_output_damaged_while_a_build_runs_is_not_recorded_as_built(
    project_copy: Path, tmp_path: Path
) -> None:
    """The damage lands after the start-of-build check; the next build still repairs it.

    Were the damaged file hashed during that run (a parent's decision), its
    csig would be stored in .sconsign as if the build had produced it, and
    every later check would pass it.
    """
    sconscript = project_copy / "runtime" / "SConscript"
    text = sconscript.read_text()
    anchor = "    nodes += [inner, aicore_copy, manifest]\n"
    text = text.replace("\nnodes = [aicore]\n", "\n" + DAMAGE_DURING_RUN + "nodes = [aicore]\n")
    text = text.replace(
        anchor,
        "    hook = renv.Command(os.path.join(out_dir, 'hook'), [],\n"
        "        lambda target, source, env, v=inner: _damage_if_asked(target, source, env, v))\n"
        "    renv.AlwaysBuild(hook)\n"
        "    renv.Depends(manifest, hook)\n" + anchor,
    )
    sconscript.write_text(text)
    build_dir, root = tmp_path / "b", tmp_path / "cache"
    build(project_copy, build_dir, root)
    so = build_dir / INNER_SO
    good = so.read_bytes()

    scons(
        *ONE,
        f"build_dir={build_dir}",
        cwd=project_copy,
        env={"SIMPLER_CACHE_DIR": str(root), "SIMPLER_TEST_DAMAGE": "1"},
        check=False,
    )
    assert so.read_bytes() != good, "the hook damaged the inner SO"
    build(project_copy, build_dir, root)
    assert so.read_bytes() == good
    assert_manifest_records(build_dir, good)
