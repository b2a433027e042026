"""SCons tool: compile_commands.json that is rebuilt only when a command changes.

SCons's own compilation_db tool marks its target AlwaysBuild, which would make
every no-op build rewrite it and `scons -q` report "not up to date".  This
wrapper keeps that tool (it collects the entries) but makes the database
depend on the text of every compile command instead, so a no-op build is a
real no-op and a flag change still rewrites it.
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
    commands = sorted(
        f"{tgt.get_abspath()}: {action.strfunction([tgt], [src], tenv)}"
        for tgt, src, tenv, action in _entries()
    )
    for node in nodes:
        node.set_always_build(0)
    env.Depends(nodes, env.Value("\n".join(commands)))
    return nodes


def generate(env: Any) -> None:
    env.Tool("compilation_db")
    env["COMPILATIONDB_USE_ABSPATH"] = True
    env.AddMethod(_database, "SimplerCompilationDatabase")


def exists(env: Any) -> bool:
    return True
