"""Choosing the compiler: the toolchain variables, custom.py, and what reaches the compiler's env.

`CC`, `CXX`, `CCFLAGS`, `CFLAGS`, `CXXFLAGS` and `LINKFLAGS` come, highest
first, from the command line (`scons CC=clang`), the environment
(`CC=clang scons`), a `custom.py` options file in the directory scons was
started from (SCons's Variables file: Python assignments, `CC = "clang"`),
then SCons's own detection.  That is ccache's order: command line, then
environment, then config file.  Flags the user gives are appended after the
project's (the last `-O` wins in gcc and clang), so `CCFLAGS=-O0` works.

The compiler's environment is `PATH`, `SOURCE_DATE_EPOCH` (gcc reads it for
`__DATE__`) and every `CCACHE_*` variable, so `CC="ccache gcc"` sees the
user's ccache settings; nothing else leaks in.
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Mapping

#: Variables that choose the toolchain; each is also read from the environment.
TOOLCHAIN_VARS = ("CC", "CXX", "CCFLAGS", "CFLAGS", "CXXFLAGS", "LINKFLAGS")
COMPILER_VARS = ("CC", "CXX")
FLAG_VARS = ("CCFLAGS", "CFLAGS", "CXXFLAGS", "LINKFLAGS")
OPTIONS_FILE = "custom.py"
PASSED_ENV = ("SOURCE_DATE_EPOCH",)
#: Compiler launchers: they run the compiler and never change what it writes.
LAUNCHERS = frozenset({"ccache", "sccache", "distcc", "icecc"})
PASSED_PREFIX = "CCACHE_"


class ToolchainError(Exception):
    """A toolchain setting that cannot be used; the message is one line."""


def _text(where: str, key: str, value: object) -> str:
    """A custom.py value as the string a command-line variable would be."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (str, int)):
        return str(value)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return shlex.join(value)
    raise ToolchainError(
        f"{where}: {key} = {value!r}: expected a string, a number, a bool or a list of strings"
    )


def read_options_file(path: str) -> dict[str, str]:
    """The assignments of a custom.py options file, as NAME -> string.

    Names starting with "_" and imported modules are the file's own helpers,
    not variables.
    """
    try:
        with open(path, encoding="utf-8") as fh:
            source = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ToolchainError(f"{path}: cannot read it ({exc})") from None
    namespace: dict[str, object] = {}
    try:
        exec(compile(source, path, "exec"), {"__builtins__": __builtins__}, namespace)
    except SyntaxError as exc:
        raise ToolchainError(f"{path}:{exc.lineno}: {exc.msg}") from None
    except Exception as exc:  # the file is user code: any failure is one line
        raise ToolchainError(f"{path}: {type(exc).__name__}: {exc}") from None
    return {
        key: _text(path, key, value)
        for key, value in namespace.items()
        if not key.startswith("_") and type(value).__name__ != "module"
    }


def from_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The toolchain variables set (non-empty) in the environment."""
    return {key: environ[key] for key in TOOLCHAIN_VARS if environ.get(key)}


def split_flags(key: str, value: str) -> list[str]:
    """A flags value split as a shell would ("-DX='a b'" is one flag)."""
    try:
        return shlex.split(value)
    except ValueError as exc:
        raise ToolchainError(f"{key}={value!r}: {exc}") from None


def check_compiler(key: str, value: str, path: str) -> None:
    """Refuse a compiler command whose program is not on the build's PATH."""
    words = split_flags(key, value)
    if not words:
        raise ToolchainError(f"{key} is empty (expected a compiler, e.g. {key}=gcc)")
    if shutil.which(words[0], path=path) is None:
        raise ToolchainError(f"{key}={value!r}: {words[0]!r} is not an executable on PATH")
    if os.path.basename(words[0]) == "ccache" and len(words) == 1:
        raise ToolchainError(f"{key}={value!r}: name the compiler after ccache (ccache gcc)")


def without_launcher(command: str) -> str:
    """A compiler command as the manifest records it: `ccache gcc` is `gcc`.

    A launcher does not change the binary, so a build with ccache and one
    without write the same manifest bytes.
    """
    words = command.split()
    while len(words) > 1 and os.path.basename(words[0]) in LAUNCHERS:
        words = words[1:]
    return " ".join(words)


def compiler_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment the compiler and linker run with."""
    env = {"PATH": environ.get("PATH", "/usr/bin:/bin")}
    for key, value in environ.items():
        if key in PASSED_ENV or key.startswith(PASSED_PREFIX):
            env[key] = value
    return env


def build_dir_problem(path: str, source: str, create: bool) -> str | None:
    """Why `path` cannot be the build directory (one line), or None.

    Checked before SCons looks at it: SCons raises a TypeError with a traceback
    for a file at the path, and for a directory it cannot create it reports
    each target's signature file instead.  The source tree itself (an empty
    `build_dir=` or `.`) would mix outputs with sources, and its two path maps
    (docs/reproducible-builds.md) would collide.  With `create`, the directory
    is made here, as the build would make it.
    """
    if os.path.realpath(path) == os.path.realpath(source):
        return "is the source tree; give the outputs a directory of their own (default: build)"
    if os.path.lexists(path) and not os.path.isdir(path):
        return "not a directory"
    if not create:
        return None
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        return f"cannot create it: {exc.strerror or exc}"
    if not os.access(path, os.W_OK | os.X_OK):
        return "not writable"
    return None


def variant_root(build_dir: str, mode: str) -> str:
    """Where a mode's outputs live: release in build_dir, debug in build_dir/debug.

    Separate trees, so switching modes neither overwrites the other's binaries
    nor relinks everything on the way back.
    """
    return build_dir if mode == "release" else os.path.join(build_dir, mode)
