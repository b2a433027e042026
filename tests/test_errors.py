"""One exception base (issue 12): every public exception class of the package is a
`SimplerError` and keeps the builtin it was before, so `except SimplerError`
catches every failure the toolkit reports on purpose and old `except ValueError`
code keeps working.

The walk imports every module of every package pyproject.toml declares; a new
exception class must be added to `BUILTIN_OF` (and to README.md "Errors").
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import tomllib
from pathlib import Path

import pytest

import simpler_build
from simpler_build import DeviceError, SimplerError

REPO = Path(__file__).resolve().parents[1]

#: Every public exception class -> the builtin it has always been catchable as
#: (Exception where it was a plain Exception subclass).
BUILTIN_OF: dict[str, type[BaseException]] = {
    "simpler_build.errors.SimplerError": Exception,
    "simpler_build.errors.DeviceError": RuntimeError,
    "simpler_build.elf.NotAnElfError": ValueError,
    "simpler_build.files.NotRegularFile": OSError,
    "simpler_build.files.FileTooLarge": OSError,
    "simpler_build.manifest.ManifestError": ValueError,
    "simpler_build.cache._flock.LockTimeout": Exception,
    "simpler_build.cache.cli.UsageError": Exception,
    "simpler_build.cache.config.ConfigError": ValueError,
    "simpler_build.cache.errors.CacheError": Exception,
    "simpler_build.cache.errors.CacheRootError": Exception,
    "simpler_build.cache.errors.CacheWriteError": Exception,
    "simpler_build.cache.errors.CacheLockError": Exception,
    "simpler_build.cache.errors.UnsafePathError": Exception,
    "simpler_build.cache.errors.InvalidFingerprint": ValueError,
    "simpler_build.cache.errors.FingerprintMismatch": Exception,
    "simpler_build.cache.errors.SourceError": Exception,
    "simpler_build.cache.errors.BinaryUnavailable": Exception,
    "simpler_build.remote.errors.RemoteConfigError": ValueError,
    "simpler_build.runtime.binaries.BinaryError": ValueError,
    "simpler_build.runtime.runner.KernelExecError": RuntimeError,
    "simpler_build.runtime.runner.DeviceUnusableError": RuntimeError,
    "simpler_build.runtime.worker.WorkerError": RuntimeError,
    "simpler_build.runtime.sim.native.NativeHelperError": RuntimeError,
    "simpler_build.runtime.runner.PreparedGraphClosedError": RuntimeError,
    "simpler_build.runtime.runner.AlreadyPreparedError": RuntimeError,
    "simpler_build.runtime.aicpu_op.InnerSoLatchError": RuntimeError,
    "simpler_build.runtime.worker.WorkerDiedError": RuntimeError,
    "simpler_build.runtime.worker.WorkerTimeoutError": RuntimeError,
    "simpler_build.runtime.sim.errors.CannError": RuntimeError,
    "simpler_build.runtime.errors.GraphError": ValueError,
    "simpler_build.runtime.errors.InputError": TypeError,
    "simpler_build.runtime.errors.InputShapeError": ValueError,
    "simpler_build.runtime.errors.OptionError": ValueError,
    "simpler_build.runtime.errors.RunnerClosedError": RuntimeError,
}
#: Modules that do something when imported (`python -m simpler_build`).
NOT_IMPORTED = frozenset({"simpler_build.__main__"})


def package_modules() -> list[str]:
    """Every module of every package pyproject.toml ships (the editable install maps
    each package to its own folder, so each package's folder is listed on its own)."""
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    names: set[str] = set()
    for package in setuptools["packages"]:
        names.add(package)
        pkg = importlib.import_module(package)
        for info in pkgutil.iter_modules(pkg.__path__, prefix=package + "."):
            if not info.ispkg:
                names.add(info.name)
    return sorted(names - NOT_IMPORTED)


def exception_classes() -> dict[str, type[BaseException]]:
    """Public exception classes by qualified name, each counted in its defining module."""
    found: dict[str, type[BaseException]] = {}
    for name in package_modules():
        module = importlib.import_module(name)
        for attr, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__ == name
                and not attr.startswith("_")
            ):
                found[f"{name}.{attr}"] = obj
    return found


def test_the_walk_sees_every_package() -> None:
    modules = package_modules()
    for expected in (
        "simpler_build.errors",
        "simpler_build.cache.store",
        "simpler_build.remote.storage",
        "simpler_build.runtime.runner",
        "simpler_build.runtime.sim.device",
    ):
        assert expected in modules


def test_every_exception_class_is_in_the_table() -> None:
    """A new exception class is a decision: its base and builtin go in the table."""
    assert sorted(exception_classes()) == sorted(BUILTIN_OF)


@pytest.mark.parametrize("qualname", sorted(BUILTIN_OF))
def test_each_is_a_simpler_error_and_keeps_its_builtin(qualname: str) -> None:
    module, _, attr = qualname.rpartition(".")
    cls = getattr(importlib.import_module(module), attr)
    assert issubclass(cls, SimplerError)
    assert issubclass(cls, BUILTIN_OF[qualname])


def test_simpler_error_is_importable_from_the_package() -> None:
    assert simpler_build.SimplerError is SimplerError
    assert "SimplerError" in simpler_build.__all__
    assert issubclass(DeviceError, RuntimeError)


# -- the real code raises them: catchable by the base and by the old builtin ------------


def test_a_bad_manifest_is_a_simpler_error_and_a_value_error(tmp_path: Path) -> None:
    from simpler_build.manifest import ManifestError, load_manifest

    bad = tmp_path / "manifest.json"
    bad.write_text("{not json")
    with pytest.raises(SimplerError) as caught:
        load_manifest(bad)
    assert isinstance(caught.value, ManifestError)
    assert isinstance(caught.value, ValueError)
    assert str(bad) in str(caught.value)


def test_a_directory_read_as_a_file_is_a_simpler_error_and_an_os_error(tmp_path: Path) -> None:
    import errno

    from simpler_build.files import NotRegularFile, read_regular

    with pytest.raises(SimplerError) as caught:
        read_regular(tmp_path)
    assert isinstance(caught.value, NotRegularFile)
    assert isinstance(caught.value, OSError)
    assert caught.value.errno == errno.EINVAL
    assert caught.value.filename == str(tmp_path)


def test_a_bad_fingerprint_is_a_simpler_error_and_a_value_error(tmp_path: Path) -> None:
    from simpler_build.cache.errors import CacheError
    from simpler_build.cache.store import ArtifactCache

    with pytest.raises(ValueError) as caught:
        ArtifactCache(tmp_path / "cache").get("not-a-fingerprint")
    assert isinstance(caught.value, CacheError)
    assert isinstance(caught.value, SimplerError)


def test_a_bad_remote_url_is_a_simpler_error_and_a_value_error() -> None:
    from simpler_build.remote.config import parse_url
    from simpler_build.remote.errors import RemoteConfigError

    with pytest.raises(SimplerError) as caught:
        parse_url("ftp://example.invalid/x", where="--remote")
    assert isinstance(caught.value, RemoteConfigError)
    assert isinstance(caught.value, ValueError)
    assert str(caught.value).startswith("--remote: ")


def test_a_file_that_is_not_an_elf_is_a_simpler_error_and_a_value_error(tmp_path: Path) -> None:
    from simpler_build.runtime.binaries import BinaryError, check_elf

    text = tmp_path / "libfake.so"
    text.write_text("not an ELF\n")
    with pytest.raises(SimplerError) as caught:
        check_elf(text, "inner_so")
    assert isinstance(caught.value, BinaryError)
    assert isinstance(caught.value, ValueError)


def test_a_device_error_is_a_simpler_error_and_a_runtime_error() -> None:
    from simpler_build.runtime import sim
    from simpler_build.runtime.sim.errors import ACL_ERROR_RT_INVALID_DEVICEID

    with pytest.raises(DeviceError) as caught:
        sim.rtCtxCreate(10_000, "a5")
    assert isinstance(caught.value, sim.CannError)
    assert isinstance(caught.value, RuntimeError)
    assert isinstance(caught.value, SimplerError)
    assert caught.value.code == ACL_ERROR_RT_INVALID_DEVICEID


def test_a_bad_command_line_is_a_simpler_error() -> None:
    from simpler_build.cache.cli import UsageError, build_parser

    with pytest.raises(SimplerError) as caught:
        build_parser().parse_args(["no-such-command"])
    assert isinstance(caught.value, UsageError)


def test_readme_lists_every_exception_class() -> None:
    """README.md "Errors" names each class, so the table a user reads is the real one."""
    readme = (REPO / "README.md").read_text()
    section = readme.partition("\n## Errors\n")[2].partition("\n## ")[0]
    missing = [q for q in BUILTIN_OF if f"`{q.rpartition('.')[2]}`" not in section]
    assert missing == []
