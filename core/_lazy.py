"""Public names resolved on first use (PEP 562), for packages whose import must stay lean.

`cache` and `remote` name their classes in `__init__` without importing the
modules behind them: `simpler-build cache warm` pays only for what it runs.
"""

from __future__ import annotations

import sys
from importlib import import_module

TYPE_CHECKING = False  # `import typing` alone costs about 2 ms of every `cache warm`
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def lazy_exports(
    package: str, exports: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for `package`, whose name -> submodule table is `exports`.

    A resolved name is stored in the package, so it is looked up once.
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
