"""Bad input, however it is made, gets one line naming the file and never a hang or a trace.

Issue 8, classes 3 (special files), 5 (input escaping into the shared cache)
and 6 (malformed manifests, CLI arguments and environment values).  The
property tests generate manifests, cache trees and argument lists and assert
that nothing escapes as an exception and that a refused input changes
nothing in the cache.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from cache_helpers import elf_header, make_build, run_env, write_manifest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simpler_build.cache import ArtifactCache, SourceError, UnsafePathError
from simpler_build.cache.cli import main
from simpler_build.cache.warm import warm
from simpler_build.manifest import MANIFEST_NAME, ManifestError, load_manifest
from simpler_build.runtime import BinaryError, RuntimeBinaries

#: A hang is the failure mode of a FIFO: every subprocess here is bounded.
HANG = 30


def _cli(*args: str, cache_dir: Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "simpler_build.cli", "cache", "--cache-dir", str(cache_dir), *args],
        env=run_env(cache_dir),
        capture_output=True,
        text=True,
        timeout=HANG,
        cwd=cwd,
    )


def _one_clear_line(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


# -- class 3: special files ------------------------------------------------------------


def test_manifest_that_is_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / MANIFEST_NAME
    os.mkfifo(fifo)
    with pytest.raises(ManifestError, match="manifest is a FIFO, not a regular file"):
        load_manifest(fifo)
    _one_clear_line(_cli("warm", str(fifo), cache_dir=tmp_path / "c"), str(fifo), "a FIFO")


@pytest.mark.parametrize("kind", ["fifo", "socket"])
def test_binary_that_is_a_special_file(tmp_path: Path, kind: str) -> None:
    manifest, _ = write_manifest(tmp_path / "b" / "rt", "a5", "rt", elf_header() + b"x" * 100)
    inner = manifest.parent / "libsimpler_inner_rt.so"
    inner.unlink()
    if kind == "fifo":
        os.mkfifo(inner)
        what = "a FIFO"
    else:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(inner))
        sock.close()
        what = "a socket"
    cache_dir = tmp_path / "c"
    _one_clear_line(_cli("warm", str(manifest), cache_dir=cache_dir), str(inner), what)
    assert ArtifactCache(cache_dir).ls() == []
    with pytest.raises(BinaryError, match=f"{inner} is {what}, not a regular file"):
        RuntimeBinaries.from_manifest(manifest, cache=ArtifactCache(cache_dir), remotes=[])


def test_special_files_inside_the_cache_root(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path / "c")
    entry = cache.put(elf_header() + b"payload")
    fp = entry.fingerprint
    os.chmod(entry.path, 0o644)
    entry.path.unlink()
    os.mkfifo(entry.path)  # a FIFO at an object's name
    with pytest.raises(UnsafePathError, match="is a FIFO, not a regular file"):
        cache.get(fp)
    stats_file = cache.layout.stats_file
    stats_file.unlink(missing_ok=True)
    os.mkfifo(stats_file)  # and at the counters' name
    for args in (("ls",), ("stats",), ("verify",), ("gc",)):
        result = _cli(*args, cache_dir=tmp_path / "c")
        assert "Traceback" not in result.stderr, (args, result.stderr)
        assert result.returncode in (0, 1), (args, result.stderr)


# -- class 5: input escaping into the shared cache --------------------------------------


def _edit(manifest: Path, role: str, **fields: object) -> None:
    data = json.loads(manifest.read_text())
    data["binaries"][role].update(fields)
    manifest.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("/etc/passwd", "is absolute"),
        ("../../../../etc/passwd", "leads outside"),
        ("../../secret.so", "leads outside"),
        ("", "non-empty path"),
    ],
)
def test_manifest_paths_stay_inside_the_tree(tmp_path: Path, path: str, problem: str) -> None:
    manifest, _ = write_manifest(tmp_path / "lib" / "a5" / "rt", "a5", "rt", elf_header())
    _edit(manifest, "inner_so", path=path)
    with pytest.raises(ManifestError, match=problem) as info:
        load_manifest(manifest)
    assert info.value.path == manifest
    cache_dir = tmp_path / "c"
    _one_clear_line(_cli("warm", str(manifest), cache_dir=cache_dir), str(manifest), problem)
    assert ArtifactCache(cache_dir).ls() == []


def test_a_symlink_out_of_the_tree_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "outside" / "secret.so"
    secret.parent.mkdir()
    secret.write_bytes(elf_header() + b"secret")
    manifest, _ = write_manifest(tmp_path / "lib" / "a5" / "rt", "a5", "rt", elf_header())
    link = manifest.parent / "link.so"
    link.symlink_to(secret)
    _edit(manifest, "inner_so", path="link.so")
    with pytest.raises(ManifestError, match=r"leaves .* through a symlink"):
        load_manifest(manifest)
    # A symlink that stays inside the tree is fine (build trees use them).
    inside = manifest.parent / "inside.so"
    inside.symlink_to(manifest.parent / "libsimpler_inner_rt.so")
    _edit(manifest, "inner_so", path="inside.so")
    assert load_manifest(manifest).inner_so.path == inside


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "is empty"),
        (b"#!/bin/sh\necho hi\n", "is not an ELF file"),
        (b"\x7fELF", "truncated ELF"),
    ],
)
def test_only_elf_shared_objects_enter_the_cache(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    manifest, _ = write_manifest(tmp_path / "b" / "rt", "a5", "rt", content)
    cache = ArtifactCache(tmp_path / "c")
    with pytest.raises(SourceError, match=problem):
        warm(cache, [manifest])
    assert cache.ls() == []


def test_an_elf_for_another_machine_is_refused(tmp_path: Path) -> None:
    head = bytearray(elf_header())
    head[18] ^= 0xFF  # e_machine
    manifest, _ = write_manifest(tmp_path / "b" / "rt", "a5", "rt", bytes(head) + b"x")
    with pytest.raises(SourceError, match="not this host's"):
        warm(ArtifactCache(tmp_path / "c"), [manifest])


# -- class 6: malformed input, never a traceback ----------------------------------------


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"\xff\xfe{}", "not UTF-8 text"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"schema_version": ' + b"9" * 5000 + b"}", "not valid JSON"),
        (b'{"schema_version": 2, "arch": "a\\u0000b"}', "is not a name"),
        (b'{"schema_version": 2, "arch": "a5\\n"}', "is not a name"),
        (b'{"schema_version": 2, "arch": "a\\u00e95"}', "is not a name"),
        (b'{"schema_version": 2, "arch": 5}', "must be str"),
        (b'{"schema_version": true}', "must be int"),
        (b"x" * (2 << 20), "more than the"),
    ],
)
def test_malformed_manifests_name_the_file(tmp_path: Path, raw: bytes, problem: str) -> None:
    path = tmp_path / MANIFEST_NAME
    path.write_bytes(raw)
    with pytest.raises(ManifestError, match=problem) as info:
        load_manifest(path)
    assert info.value.path == path and "\n" not in str(info.value)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
_FIELDS = ("path", "size", "fingerprint", "sha256", "build_id")
#: The examples share tmp_path on purpose: each writes its own case over the last.
_FIXTURE = [HealthCheck.function_scoped_fixture]


@settings(max_examples=1500, deadline=None, suppress_health_check=_FIXTURE)
@given(
    role=st.sampled_from(("dispatcher", "inner_so", "aicore")),
    field=st.sampled_from(_FIELDS),
    top=st.sampled_from(("schema_version", "arch", "runtime", "mode", "binaries", None)),
    value=_json,
)
def test_generated_manifests_are_refused_in_one_line_or_loaded(
    tmp_path: Path, role: str, field: str, top: str | None, value: object
) -> None:
    """A valid manifest with one field replaced by any JSON value."""
    base = tmp_path / "lib" / "a5" / "rt"
    manifest = base / MANIFEST_NAME
    if not manifest.exists():
        write_manifest(base, "a5", "rt", elf_header() + b"x")
    data = json.loads(manifest.read_text())
    if top is None:
        data["binaries"][role][field] = value
    else:
        data[top] = value
    case = base.parent / "case" / MANIFEST_NAME
    case.parent.mkdir(exist_ok=True)
    case.write_text(json.dumps(data))
    try:
        load_manifest(case)
    except ManifestError as exc:
        assert exc.path == case and "\n" not in str(exc)


@settings(max_examples=1000, deadline=None, suppress_health_check=_FIXTURE)
@given(raw=st.binary(max_size=300))
def test_generated_bytes_are_refused_in_one_line(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / MANIFEST_NAME
    path.write_bytes(raw)
    try:
        load_manifest(path)
    except ManifestError as exc:
        assert exc.path == path and "\n" not in str(exc)


_ARG = st.sampled_from(
    ["warm", "fetch", "push", "stats", "verify", "gc", "ls", "clear", "--json", "--repair",
     "--max-size", "--remote", "--cache-dir", "-h", "10X", "1G", "", "\x00", "build",
     "redis://x:0", "redis://127.0.0.1:1|read-only"]
) | st.text(max_size=12)  # fmt: skip


@settings(max_examples=600, deadline=None, suppress_health_check=_FIXTURE)
@given(argv=st.lists(_ARG, max_size=5))
def test_generated_command_lines_never_raise_and_never_clear(
    tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    cache_dir = tmp_path / "c"
    if not cache_dir.exists():
        make_build(tmp_path / "build", size=2000)
        assert main(["--cache-dir", str(cache_dir), "warm", str(tmp_path / "build")]) == 0
    before = sorted(e.fingerprint for e in ArtifactCache(cache_dir).ls())
    if "clear" in argv and "--yes" in argv:
        return  # the one command whose job is to change the cache
    os.environ.pop("SIMPLER_REMOTE_STORAGE", None)
    # A bare `warm` means ./build: run where that is the already-warmed tree, not
    # wherever pytest started (a checkout with its own build/ would add to the cache).
    with contextlib.chdir(tmp_path):
        code = main(["--cache-dir", str(cache_dir), *argv])
    capsys.readouterr()
    assert code in (0, 1, 2)
    after = sorted(e.fingerprint for e in ArtifactCache(cache_dir).ls())
    if code != 0 or "gc" not in argv:
        assert after == before


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"SIMPLER_REMOTE_STORAGE": "redis://h:1|nope"}, "SIMPLER_REMOTE_STORAGE: "),
        ({"SIMPLER_REMOTE_TIMEOUT": "-3"}, "SIMPLER_REMOTE_TIMEOUT: "),
        ({"SIMPLER_REMOTE_MAX_SIZE": "big"}, "SIMPLER_REMOTE_MAX_SIZE: "),
    ],
)
def test_bad_environment_values_are_one_line(
    tmp_path: Path, env: dict[str, str], needle: str
) -> None:
    make_build(tmp_path / "build", size=1000)
    proc = subprocess.run(
        [sys.executable, "-m", "simpler_build.cli", "cache", "fetch", "build"],
        env={**run_env(tmp_path / "c"), "SIMPLER_REMOTE_STORAGE": "redis://h:1", **env},
        capture_output=True,
        text=True,
        timeout=HANG,
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert needle in proc.stderr and "Traceback" not in proc.stderr


def test_unusable_cache_dir_from_the_environment(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    make_build(tmp_path / "build", size=1000)
    proc = subprocess.run(
        [sys.executable, "-m", "simpler_build.cli", "cache", "warm", "build"],
        env=run_env(tmp_path / "file" / "cache"),
        capture_output=True,
        text=True,
        timeout=HANG,
        cwd=tmp_path,
    )
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert str(tmp_path / "file") in proc.stderr and "Traceback" not in proc.stderr
