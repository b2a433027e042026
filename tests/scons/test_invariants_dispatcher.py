"""The built dispatcher installs the inner SO atomically and durably.

Atomic: the final name moves to a new inode in one rename, so a reader holding
the old file keeps reading the old bytes.  Durable: the temp file is fsynced
before the rename and the directory after it -- seen by an LD_PRELOAD shim,
compiled here, that logs every fsync and rename the real dispatcher makes.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import pytest
import xxhash

from simpler_build.runtime.abi import DeviceArgs, LoaderKernelArgs
from tests.conftest import ARCHES, BuiltTree

INIT = "DynTileFwkBackendKernelServerInit"


class Bundle:
    """A KernelArgs -> DeviceArgs -> (inner SO bytes, preinstall dir) chain in host memory."""

    def __init__(self, inner: bytes, preinstall_dir: Path) -> None:
        self.inner = ctypes.create_string_buffer(inner, len(inner))
        self.dir = ctypes.create_string_buffer(os.fsencode(preinstall_dir))
        self.dargs = DeviceArgs(
            inner_so_bin=ctypes.addressof(self.inner),
            inner_so_len=len(inner),
            preinstall_dir=ctypes.addressof(self.dir),
        )
        self.kargs = LoaderKernelArgs(device_args=ctypes.addressof(self.dargs))

    def init(self, dispatcher: Path) -> int:
        lib = ctypes.CDLL(str(dispatcher), mode=os.RTLD_LOCAL)
        fn = getattr(lib, INIT)
        fn.argtypes, fn.restype = [ctypes.c_void_p], ctypes.c_int
        return fn(ctypes.addressof(self.kargs))


def _inner(built_tree: BuiltTree) -> bytes:
    return built_tree.inner_so("a5", "aicpu_build_graph").read_bytes()


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("old_size", ["same", "shorter"])
def test_init_replaces_a_bad_file_with_a_new_inode(
    arch: str, old_size: str, built_tree: BuiltTree, tmp_path: Path
) -> None:
    """A reader that opened the old file keeps the old bytes; the name gets the new ones."""
    inner = _inner(built_tree)
    final = tmp_path / f"simpler_inner_{xxhash.xxh3_64_hexdigest(inner)}_0.so"
    old = bytearray(inner if old_size == "same" else inner[: len(inner) // 2])
    old[len(old) // 3] ^= 0xFF  # damaged: the dispatcher must not keep it
    final.write_bytes(bytes(old))
    before = final.stat()
    with open(final, "rb") as reader:
        assert Bundle(inner, tmp_path).init(built_tree.dispatcher(arch)) == 0
        after = final.stat()
        assert after.st_ino != before.st_ino, "the file was rewritten in place"
        assert reader.read() == bytes(old), "an open reader saw the file change under it"
    assert final.read_bytes() == inner
    assert sorted(p.name for p in tmp_path.iterdir()) == [final.name], "temp file left behind"


SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void log_event(const char *kind, const char *a, const char *b) {
    const char *out = getenv("SIMPLER_IO_LOG");
    if (out == NULL) return;
    char line[3 * PATH_MAX];
    int n = snprintf(line, sizeof line, "%s\t%s\t%s\n", kind, a, b);
    int fd = open(out, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    if (write(fd, line, (size_t)n) != n) abort();
    close(fd);
}

int fsync(int fd) {
    static int (*real)(int);
    if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    path[n > 0 ? n : 0] = '\0';
    struct stat st;
    int dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
    log_event(dir ? "fsync-dir" : "fsync-file", path, "");
    return real(fd);
}

int rename(const char *from, const char *to) {
    static int (*real)(const char *, const char *);
    if (real == NULL) real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    log_event("rename", from, to);
    return real(from, to);
}
"""

CALL_INIT = r"""
import ctypes, os, sys
from simpler_build.runtime.abi import DeviceArgs, LoaderKernelArgs

dispatcher, inner_so, preinstall = sys.argv[1:]
inner = open(inner_so, "rb").read()
buf = ctypes.create_string_buffer(inner, len(inner))
directory = ctypes.create_string_buffer(os.fsencode(preinstall))
dargs = DeviceArgs(inner_so_bin=ctypes.addressof(buf), inner_so_len=len(inner),
                   preinstall_dir=ctypes.addressof(directory))
kargs = LoaderKernelArgs(device_args=ctypes.addressof(dargs))
init = getattr(ctypes.CDLL(dispatcher), "DynTileFwkBackendKernelServerInit")
init.argtypes, init.restype = [ctypes.c_void_p], ctypes.c_int
sys.exit(init(ctypes.addressof(kargs)))
"""


@pytest.fixture(scope="module")
def io_shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("shim")
    (work / "shim.c").write_text(SHIM)
    out = work / "libiolog.so"
    cmd = ["gcc", "-shared", "-fPIC", "-O1", "-o", str(out), str(work / "shim.c"), "-ldl"]
    subprocess.run(cmd, check=True)
    return out


def test_init_fsyncs_the_temp_file_renames_then_fsyncs_the_directory(
    io_shim: Path, built_tree: BuiltTree, tmp_path: Path
) -> None:
    inner_so = built_tree.inner_so("a5", "aicpu_build_graph")
    preinstall, log = tmp_path / "preinstall", tmp_path / "io.log"
    env = {**os.environ, "LD_PRELOAD": str(io_shim), "SIMPLER_IO_LOG": str(log)}
    dispatcher = built_tree.dispatcher("a5")
    args = [str(dispatcher), str(inner_so), str(preinstall)]
    proc = subprocess.run(
        [sys.executable, "-c", CALL_INIT, *args], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    events = [tuple(line.split("\t")) for line in log.read_text().splitlines()]
    mine = [e for e in events if str(preinstall) in e[1]]
    final = preinstall / f"simpler_inner_{xxhash.xxh3_64_hexdigest(inner_so.read_bytes())}_0.so"
    assert len(mine) == 3, events
    temp = mine[0][1]
    assert Path(temp).parent == preinstall and Path(temp).name.startswith(final.name + ".tmp")
    assert mine == [
        ("fsync-file", temp, ""),
        ("rename", temp, str(final)),
        ("fsync-dir", str(preinstall), ""),
    ]
    assert final.read_bytes() == inner_so.read_bytes()
