"""What `scons arch=all` produces, checked from the ELF files and manifests themselves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import xxhash

from simpler_build.elf import defined_dynamic_symbols, has_debug_info, read_build_id
from simpler_build.manifest import ROLES, SCHEMA_VERSION, load_manifest
from simpler_build.runtime.abi import DISPATCHER_ENTRY_POINTS
from tests.conftest import ARCHES, RUNTIMES, BuiltTree

DISPATCHER_EXPORTS = set(DISPATCHER_ENTRY_POINTS)


def _has_section(path: Path, name: str) -> bool:
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as fh:
        return ELFFile(fh).get_section_by_name(name) is not None


@pytest.mark.parametrize("arch", ARCHES)
def test_dispatcher_exports_exactly_its_three_entry_points(built_tree: BuiltTree, arch: str):
    so = built_tree.dispatcher(arch)
    assert defined_dynamic_symbols(so) == DISPATCHER_EXPORTS
    assert not _has_section(so, ".symtab"), "dispatcher must be stripped"
    assert read_build_id(so), "dispatcher must carry a GNU build-id"


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_inner_so_exports_init_and_exec(built_tree: BuiltTree, arch: str, runtime: str):
    so = built_tree.inner_so(arch, runtime)
    assert defined_dynamic_symbols(so) == {"simpler_aicpu_init", "simpler_aicpu_exec"}
    assert read_build_id(so)


def test_runtimes_have_distinct_inner_sos(built_tree: BuiltTree):
    for arch in ARCHES:
        digests = {
            xxhash.xxh3_64_hexdigest(built_tree.inner_so(arch, r).read_bytes()) for r in RUNTIMES
        }
        assert len(digests) == len(RUNTIMES)


def test_a5_aicore_is_mix_mode_and_several_times_larger(built_tree: BuiltTree):
    a5 = built_tree.aicore("a5", "host_build_graph")
    a2a3 = built_tree.aicore("a2a3", "host_build_graph")
    a5_syms, a2a3_syms = defined_dynamic_symbols(a5), defined_dynamic_symbols(a2a3)
    vector = {
        "simpler_kernel_vec_add_f32",
        "simpler_kernel_vec_mul_f32",
        "simpler_kernel_vec_adds_f32",
    }
    assert vector <= a5_syms and vector <= a2a3_syms
    assert "simpler_kernel_matmul_f32" in a5_syms, "a5 MIX binary carries the cube kernel"
    assert "simpler_kernel_matmul_f32" not in a2a3_syms, "a2a3 binary is vector-only"
    assert {"simpler_aicore_kernels", "simpler_aicore_kernel_count"} <= a2a3_syms
    assert has_debug_info(a5) and has_debug_info(a2a3)
    assert a5.stat().st_size > 3 * a2a3.stat().st_size


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_manifest_describes_the_files_on_disk(built_tree: BuiltTree, arch: str, runtime: str):
    path = built_tree.manifest(arch, runtime)
    raw = json.loads(path.read_text())
    assert raw["schema_version"] == SCHEMA_VERSION
    assert (raw["arch"], raw["runtime"], raw["mode"]) == (arch, runtime, "release")
    assert set(raw["binaries"]) == set(ROLES)
    for role, entry in raw["binaries"].items():
        assert not Path(entry["path"]).is_absolute(), "paths are relative to the manifest"
        binary = (path.parent / entry["path"]).resolve()
        data = binary.read_bytes()
        assert entry["size"] == len(data)
        assert entry["fingerprint"] == xxhash.xxh3_64_hexdigest(data), role
        assert entry["build_id"] == read_build_id(binary)
    assert raw["toolchain"]["aicore_mode"] == ("mix" if arch == "a5" else "vector")
    assert "-std=c11" in raw["toolchain"]["inner_so"]["cflags"]
    assert raw["binaries"]["dispatcher"]["path"] == "../dispatcher/libsimpler_aicpu_dispatcher.so"

    manifest = load_manifest(path)
    assert manifest.inner_so.path == built_tree.inner_so(arch, runtime)


def test_compile_commands_cover_every_source(built_tree: BuiltTree):
    entries = json.loads((built_tree.build_dir / "compile_commands.json").read_text())
    files = {Path(e["file"]).name for e in entries}
    assert {
        "dispatcher.cpp",
        "vector_kernels.c",
        "cube_kernels.c",
        "kernel_table.c",
        "aicpu_common.c",
        "host_build_graph.c",
        "aicpu_build_graph.c",
    } <= files
    assert all(e["command"].startswith(("gcc ", "g++ ")) for e in entries)
