"""The runtime is the `[runtime]` extra: a missing module says which extra installs it.

Imported first by `simpler_build.runtime`, so a base install (warm/fetch only)
gets one line naming the extra instead of numpy's or pyelftools' ImportError
from somewhere inside.
"""

from __future__ import annotations

from importlib.util import find_spec

#: module -> distribution, for each third-party module the runtime imports.
NEEDS = {"numpy": "numpy", "elftools": "pyelftools"}

_missing = [dist for mod, dist in NEEDS.items() if find_spec(mod) is None]
if _missing:
    raise ImportError(
        f"simpler_build.runtime needs {' and '.join(_missing)}, not installed: "
        "pip install 'simpler-build[runtime]'",
        name=_missing[0],
    )
