"""The `simpler_build` logger hierarchy (issue 12): silent by default, the decisions
users ask about at DEBUG/INFO, remote warnings printed exactly once, and no
`import logging` on the cache read path.

Logging state is process-wide, so each case runs the real code in a fresh
interpreter: the parent test builds and warms a synthetic build, the child
resolves its manifests (beside the manifest, a cache hit, a miss).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from simpler_build import SimplerError
from simpler_build.cache.store import ArtifactCache
from simpler_build.cache.warm import warm
from tests.cache.cache_helpers import blob, write_manifest

REPO = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = ("core", "cache", "remote", "runtime")


def _three_manifests(tmp_path: Path) -> tuple[Path, list[Path]]:
    """A cache and 3 manifests: all binaries beside; inner SO only in the cache; inner SO
    nowhere."""
    cache_dir = tmp_path / "cache"
    beside, _ = write_manifest(tmp_path / "b" / "beside", "a5", "host_build_graph", blob(1, 5000))
    hit, _ = write_manifest(tmp_path / "b" / "hit", "a5", "aicpu_build_graph", blob(2, 5000))
    warm(ArtifactCache(cache_dir), [hit.parent])
    (hit.parent / "libsimpler_inner_aicpu_build_graph.so").unlink()
    miss, _ = write_manifest(tmp_path / "m" / "miss", "a2a3", "host_build_graph", blob(3, 5000))
    (miss.parent / "libsimpler_inner_host_build_graph.so").unlink()
    return cache_dir, [beside, hit, miss]


def _resolve_in_child(prelude: str, cache_dir: Path, manifests: list[Path]) -> tuple[str, str]:
    """Run `prelude`, then resolve each manifest with no remote; (stdout, stderr).

    The child prints one JSON line last: the outcomes, and what it has loaded.
    """
    code = f"""
{prelude}
import json, sys
from simpler_build import SimplerError
from simpler_build.cache.resolve import resolve
from simpler_build.cache.store import ArtifactCache
from simpler_build.manifest import load_manifest

cache = ArtifactCache({str(cache_dir)!r})
outcomes = []
for path in {[str(m) for m in manifests]!r}:
    try:
        resolve(load_manifest(path), cache, remotes=[])
        outcomes.append("resolved")
    except SimplerError as exc:
        outcomes.append(type(exc).__name__)
handlers = []
if "logging" in sys.modules:
    import logging
    handlers = [type(h).__name__ for h in logging.getLogger("simpler_build").handlers]
print("RESULT " + json.dumps({{"outcomes": outcomes, "logging_loaded": "logging" in sys.modules,
                              "package_handlers": handlers}}))
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, proc.stderr


def _result(stdout: str) -> dict[str, object]:
    return json.loads(stdout.rpartition("RESULT ")[2])


def test_the_read_path_never_imports_logging(tmp_path: Path) -> None:
    """Debug logging costs nothing where nobody listens: resolve (beside, hit, miss)
    never loads the logging module."""
    cache_dir, manifests = _three_manifests(tmp_path)
    stdout, stderr = _resolve_in_child("", cache_dir, manifests)
    result = _result(stdout)
    assert result["outcomes"] == ["resolved", "resolved", "BinaryUnavailable"]
    assert result["logging_loaded"] is False
    assert stderr == ""


def test_debug_and_info_never_import_logging() -> None:
    """`log.debug` / `log.info` called where nobody imported logging load nothing: the
    read path's callers (resolve, transfer's "already in the local cache") rely on it."""
    code = (
        "import sys\n"
        "from simpler_build import log\n"
        "log.debug('simpler_build.cache.transfer', '%s: already in the local cache', 'x')\n"
        "log.info('simpler_build.cache.transfer', 'pulled %s', 'x')\n"
        "print('logging' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert proc.stdout.strip() == "False"
    assert proc.stderr == ""


def test_silent_by_default_with_logging_loaded(tmp_path: Path) -> None:
    """A program that imports logging but configures nothing sees no record of ours:
    the package logger holds a NullHandler and nothing else, and nobody called
    basicConfig (the root logger has no handler)."""
    cache_dir, manifests = _three_manifests(tmp_path)
    stdout, stderr = _resolve_in_child(
        "import logging\nassert not logging.getLogger().handlers", cache_dir, manifests
    )
    result = _result(stdout)
    assert result["outcomes"] == ["resolved", "resolved", "BinaryUnavailable"]
    assert result["package_handlers"] == ["NullHandler"]
    assert stderr == ""
    assert stdout.startswith("RESULT ")


def test_cache_decisions_are_logged_at_debug(tmp_path: Path) -> None:
    cache_dir, manifests = _three_manifests(tmp_path)
    stdout, _ = _resolve_in_child(
        "import logging, sys\n"
        "logging.basicConfig(level=logging.DEBUG, stream=sys.stdout,"
        " format='%(levelname)s %(name)s %(message)s')",
        cache_dir,
        manifests,
    )
    lines = [line for line in stdout.splitlines() if "simpler_build.cache.resolve" in line]
    assert all(line.startswith("DEBUG simpler_build.cache.resolve ") for line in lines)
    beside = [line for line in lines if line.endswith(": beside the manifest")]
    assert len(beside) == 3 + 2 + 2  # every binary of the first; the others' non-inner
    hits = [line for line in lines if "cache hit" in line]
    assert len(hits) == 1 and "inner_so" in hits[0] and "not beside the manifest" in hits[0]
    misses = [line for line in lines if "cache miss" in line]
    assert len(misses) == 1 and "inner_so" in misses[0]


def _flip_byte(path: Path) -> None:
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))


def test_quarantine_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = ArtifactCache(tmp_path / "cache")
    bad = cache.put(blob(7, 50_000), arch="a5").fingerprint
    _flip_byte(cache.layout.object_path(bad))
    caplog.set_level(logging.INFO, logger="simpler_build")
    report = cache.verify(repair=True)
    assert report.corrupt[0].quarantined_to is not None
    records = [r for r in caplog.records if r.name == "simpler_build.cache.maintenance"]
    assert len(records) == 1 and records[0].levelno == logging.INFO
    assert f"quarantined {bad} to {report.corrupt[0].quarantined_to}" in records[0].getMessage()


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_REMOTE_DOWN = """
from simpler_build.remote import open_remotes
(remote,) = open_remotes("redis://127.0.0.1:{port}")
for _ in range(3):
    assert remote.present(["0123456789abcdef"]) is None
"""


def _remote_down(prelude: str) -> str:
    """stderr of a process whose remote refuses connections three times."""
    code = prelude + "\n" + _REMOTE_DOWN.format(port=_closed_port())
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "remote storage redis://127.0.0.1" in line]


def test_a_remote_warning_prints_once_without_logging() -> None:
    lines = _warnings(_remote_down(""))
    assert len(lines) == 1
    assert lines[0].startswith("simpler-build: warning: remote storage redis://127.0.0.1:")
    assert "continuing with the local cache" in lines[0]


def test_a_remote_warning_prints_once_through_a_configured_handler() -> None:
    """With a handler that shows warnings, the record is the one line (no second print)."""
    lines = _warnings(
        _remote_down("import logging\nlogging.basicConfig(format='LOGGED %(name)s %(message)s')")
    )
    assert len(lines) == 1
    assert lines[0].startswith("LOGGED simpler_build.remote.storage remote storage")


def test_a_silenced_logger_prints_no_remote_warning() -> None:
    stderr = _remote_down(
        "import logging\nlogging.getLogger('simpler_build').setLevel(logging.ERROR)"
    )
    assert _warnings(stderr) == []


def test_enable_stderr_shows_info_or_debug(tmp_path: Path) -> None:
    """The command line's -v: one INFO/DEBUG line per record on stderr, warnings once."""
    cache_dir, manifests = _three_manifests(tmp_path)
    _, info_err = _resolve_in_child(
        "from simpler_build.log import enable_stderr\nenable_stderr(1)", cache_dir, manifests
    )
    assert "simpler-build: debug:" not in info_err
    _, debug_err = _resolve_in_child(
        "from simpler_build.log import enable_stderr\nenable_stderr(2)", cache_dir, manifests
    )
    lines = debug_err.splitlines()
    assert "simpler-build: debug: simpler_build.cache.resolve: inner_so" in debug_err
    assert any("cache hit" in line for line in lines)
    assert all(line.startswith("simpler-build: debug: ") for line in lines)
    warned = _warnings(
        _remote_down("from simpler_build.log import enable_stderr\nenable_stderr(1)")
    )
    assert len(warned) == 1 and warned[0].startswith("simpler-build: warning: remote storage")


def test_enable_stderr_replaces_and_removes_its_handler() -> None:
    from simpler_build import log

    root = logging.getLogger("simpler_build")
    before = list(root.handlers)
    try:
        first = log.enable_stderr(1)
        second = log.enable_stderr(2)
        assert first not in root.handlers and second in root.handlers
        assert root.level == logging.DEBUG
        assert log.enable_stderr(0) is None
        assert root.handlers == before
        assert root.level == logging.NOTSET
    finally:
        log.enable_stderr(0)


def test_no_basic_config_anywhere() -> None:
    """A library never configures the program's logging."""
    offenders = [
        str(path.relative_to(REPO))
        for folder in PACKAGE_DIRS
        for path in sorted((REPO / folder).rglob("*.py"))
        if "basicConfig(" in path.read_text()
    ]
    assert offenders == []


def test_a_miss_is_still_an_error_not_just_a_log_line(tmp_path: Path) -> None:
    """Logging is information: the decision itself still raises where it did."""
    from simpler_build.cache.resolve import resolve
    from simpler_build.manifest import load_manifest

    cache_dir, manifests = _three_manifests(tmp_path)
    with pytest.raises(SimplerError, match="is available nowhere"):
        resolve(load_manifest(manifests[2]), ArtifactCache(cache_dir), remotes=[])


def test_cli_verbosity_beyond_v_shows_the_log_on_stderr(tmp_path: Path) -> None:
    """-v is a line per item; -vvv adds the simpler_build log at DEBUG (gc's evictions)."""
    cache = ArtifactCache(tmp_path / "c")
    for i in range(3):
        cache.put(b"object %d" % i * 100)

    def gc(*flags: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "simpler_build", *flags, "cache", "gc", "--max-size", "1"]
        env = {**os.environ, "SIMPLER_CACHE_DIR": str(tmp_path / "c")}
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)

    quiet = gc("-v")
    assert quiet.returncode == 0 and "debug:" not in quiet.stderr, quiet.stderr
    for i in range(3):
        cache.put(b"again %d" % i * 100)
    loud = gc("-vvv")
    assert loud.returncode == 0, loud.stderr
    assert "simpler-build: debug: simpler_build." in loud.stderr, loud.stderr
