"""The runtime is the `[runtime]` extra: a missing module says which extra installs it.

Imported first by `simpler_build.runtime`, so a base install (warm/fetch only)
gets one line naming the extra instead of numpy's ImportError from somewhere
inside.  pyelftools is not needed: the runtime reads ELF headers with `struct`
(`binaries.elf_problem`), so it is neither checked nor imported here -- a
`find_spec` of a module not yet imported scans the whole of sys.path, on every
new process's first run.
"""

from __future__ import annotations

import sys

#: module -> distribution, for each third-party module the runtime imports.
NEEDS = {"numpy": "numpy"}


def _missing() -> list[str]:
    """Distributions of NEEDS that are not installed; one already imported is not looked up."""
    from importlib.util import find_spec

    return [dist for mod, dist in NEEDS.items() if mod not in sys.modules and not find_spec(mod)]


if not all(mod in sys.modules for mod in NEEDS) and (_absent := _missing()):
    raise ImportError(
        f"simpler_build.runtime needs {' and '.join(_absent)}, not installed: "
        "pip install 'simpler-build[runtime]'",
        name=_absent[0],
    )
