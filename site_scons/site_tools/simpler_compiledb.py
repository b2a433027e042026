"""SCons tool: compile_commands.json that is rebuilt only when a command changes.

SCons's own compilation_db tool marks its target AlwaysBuild, which would make
every no-op build rewrite it and `scons -q` report "not up to date".  This
wrapper keeps that tool (it collects the entries) but makes the database
depend on the object nodes instead: an object's build signature already
covers its command line, so a flag change rebuilds the object and then the
database, while a no-op build neither renders every command's text (which
cost about 0.5 s with 300 kernels per arch) nor rewrites anything.
"""

from __future__ import annotations

from typing import Any

import SCons.Tool.compilation_db as compilation_db


def _entries() -> list[tuple[Any, Any, Any, Any]]:
    # The upstream tool keeps its entries in a module-level list.
    return compilation_db.__dict__["__COMPILATION_DB_ENTRIES"]


def _database(env: Any, target: str) -> Any:
    """Call after every SConscript is read, so that all compile commands are known."""
    nodes = env.CompilationDatabase(target)
    objects = sorted({tgt for tgt, _src, _env, _action in _entries()}, key=str)
    for node in nodes:
        node.set_always_build(0)
    env.Depends(nodes, objects)
    return nodes


def generate(env: Any) -> None:
    env.Tool("compilation_db")
    env["COMPILATIONDB_USE_ABSPATH"] = True
    env.AddMethod(_database, "SimplerCompilationDatabase")


def exists(env: Any) -> bool:
    return True
