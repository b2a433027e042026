"""SCons tool: apply one arch profile (and the build mode) to an environment.

Usage: `env.Tool("simpler_arch")`, then `arch_env = env.SimplerArchEnv("a5", "release")`.
"""

from __future__ import annotations

from typing import Any

from simpler_profiles import ARCH_PROFILES, MODE_FLAGS

COMMON = {
    "CCFLAGS": ["-Wall", "-Wextra", "-Werror"],
    "CFLAGS": ["-std=c11"],
    "CXXFLAGS": ["-std=c++17"],
    # Every binary carries a GNU build-id: recorded in manifests, never a cache key.
    "SHLINKFLAGS": ["-Wl,--build-id=sha1", "-Wl,-z,defs"],
}


def _arch_env(env: Any, arch: str, mode: str) -> Any:
    profile = ARCH_PROFILES[arch]
    arch_env = env.Clone(SIMPLER_ARCH=arch, SIMPLER_PROFILE=profile, SIMPLER_MODE=mode)
    arch_env.Append(**COMMON)
    arch_env.Append(**MODE_FLAGS[mode])
    arch_env.Append(CPPDEFINES=profile.cpp_defines())
    # Last: the user's CCFLAGS/CFLAGS/... (simpler_toolchain) override the project's.
    arch_env.Append(**env.get("SIMPLER_USER_FLAGS", {}))
    return arch_env


def generate(env: Any) -> None:
    env.AddMethod(_arch_env, "SimplerArchEnv")


def exists(env: Any) -> bool:
    return bool(env.Detect(["gcc", "cc"])) and bool(env.Detect(["g++", "c++"]))
