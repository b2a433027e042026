"""The build's two tables: per-arch toolchain profiles and runtime variants.

Every arch difference lives in ARCH_PROFILES -- defines, flags, core counts
and the AICore binary mode -- so the SConscripts never branch on an arch
name.  a5 links its AICore kernels as one MIX-mode ELF (cube and vector
kernels, full debug info); a2a3 links vector-only with line tables only, so
the a5 ELF comes out several times larger, as it does on hardware (about
365 KB and 78 KB; docs/simulated-device.md, tests/scons/test_aicore_sizes.py).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ArchProfile:
    name: str
    soc: str
    aic_cores: int  # cube cores per device
    aiv_cores: int  # vector cores per device
    aicore_mode: str  # "mix": cube + vector kernels in one ELF; "vector": AIV only
    aicore_debug: tuple[str, ...]  # debug-info flags of the AICore binary
    defines: tuple[tuple[str, str | int], ...]

    @property
    def is_mix(self) -> bool:
        return self.aicore_mode == "mix"

    def cpp_defines(self) -> list[tuple[str, str | int]]:
        return [
            *self.defines,
            ("SIMPLER_AIC_CORES", self.aic_cores),
            ("SIMPLER_AIV_CORES", self.aiv_cores),
            ("SIMPLER_AICORE_MIX", int(self.is_mix)),
        ]


ARCH_PROFILES: dict[str, ArchProfile] = {
    profile.name: profile
    for profile in (
        ArchProfile(
            name="a2a3",
            soc="Ascend910B",
            aic_cores=24,
            aiv_cores=48,
            aicore_mode="vector",
            aicore_debug=("-g1",),
            defines=(("SIMPLER_ARCH_A2A3", 1),),
        ),
        ArchProfile(
            name="a5",
            soc="Ascend950",
            aic_cores=36,
            aiv_cores=72,
            aicore_mode="mix",
            aicore_debug=("-g3", "-gdwarf-5"),
            defines=(("SIMPLER_ARCH_A5", 1),),
        ),
    )
}


@dataclass(frozen=True)
class RuntimeVariant:
    name: str
    source: str  # under runtime/aicpu/
    summary: str


RUNTIME_VARIANTS: dict[str, RuntimeVariant] = {
    variant.name: variant
    for variant in (
        RuntimeVariant(
            "host_build_graph",
            "host_build_graph.c",
            "the host builds the task graph; the AICPU walks it in dependency order",
        ),
        RuntimeVariant(
            "aicpu_build_graph",
            "aicpu_build_graph.c",
            "the AICPU derives dependencies from buffer hazards and runs the graph in waves",
        ),
    )
}

#: Flags of each build mode, applied to every component.
MODE_FLAGS: dict[str, dict[str, list[str]]] = {
    "release": {"CCFLAGS": ["-O2"], "CPPDEFINES": ["NDEBUG"]},
    "debug": {"CCFLAGS": ["-O0", "-g"], "CPPDEFINES": ["SIMPLER_DEBUG"]},
}


def selected(value: str, table: dict[str, object]) -> list[str]:
    """Names a command-line value selects: one name, or every name for `all`."""
    return list(table) if value == "all" else [value]
