"""Value objects with `__slots__`, for the modules on the cheap start-up paths.

`@dataclass` imports `dataclasses` and through it `inspect` (ast, dis,
tokenize: about 5 ms), and generates every class's methods with `exec` when
the module is imported (about 0.5 ms a class).
`cache warm`, `fetch`, `get` and `stats` run in every build and CI shard
and pay that before doing any work (issue 9), so their records derive from
`Record` instead: the fields are `_fields` (constructor order; the subclass
sets `__slots__ = _fields`), defaults live in `_defaults` (and `_factories`
for fresh mutable values), and a subclass gets what the dataclass gave --
keyword or positional construction, equality, a repr, hashing and
immutability when frozen, pickling -- plus `replace` and `as_dict`.  Only
`__init__` is generated (a plain function, as fast as the dataclass's), and
only when a process first builds an instance of the class.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, ClassVar, Self


class Record:
    """Base of a record class; a subclass lists its fields as `_fields` and `__slots__`.

    `_frozen = False` makes the fields assignable (reports filled in as work
    proceeds); frozen records are hashable, like `@dataclass(frozen=True)`.
    """

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    _defaults: ClassVar[dict[str, object]] = {}
    _factories: ClassVar[dict[str, Callable[[], object]]] = {}
    _frozen: ClassVar[bool] = True

    def __init__(self, *args: object, **kwargs: object) -> None:
        # The first instance of a class compiles its __init__ (as @dataclass does at
        # class creation, but only for the classes a process actually builds).
        _compile_init(type(self))(self, *args, **kwargs)

    def _assign(self, values: dict[str, Any]) -> None:
        """Set every field from `values`: a subclass on a first-run path writes its __init__
        out (the generated one costs a compile() in every new process) and ends it with
        `self._assign(locals())`."""
        for name in self._fields:
            object.__setattr__(self, name, values[name])

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, f) for f in self._fields)

    def __setattr__(self, key: str, value: object) -> None:
        if self._frozen:
            raise AttributeError(f"cannot assign {key!r}: {type(self).__name__} is frozen")
        object.__setattr__(self, key, value)

    def __delattr__(self, key: str) -> None:
        if self._frozen:
            raise AttributeError(f"cannot delete {key!r}: {type(self).__name__} is frozen")
        object.__delattr__(self, key)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__ or not isinstance(other, Record):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        if not self._frozen:
            raise TypeError(f"unhashable type: {type(self).__name__!r}")
        return hash(self._values())

    def __repr__(self) -> str:
        inner = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}({inner})"

    def __reduce__(self) -> tuple[type[Self], tuple[object, ...]]:
        return (type(self), self._values())

    def replace(self, **changes: object) -> Self:
        """A copy with `changes` applied (dataclasses.replace)."""
        values = dict(zip(self._fields, self._values(), strict=True))
        values.update(changes)
        return type(self)(**values)

    def as_dict(self) -> dict[str, Any]:
        """field -> value, in declaration order (dataclasses.asdict, one level deep)."""
        return {f: getattr(self, f) for f in self._fields}


_MISSING = object()


def _compile_init(cls: type[Record]) -> Callable[..., None]:
    """Give `cls` an __init__ taking its fields (positional or keyword, defaults last)."""
    params, body = [], []
    for field in cls._fields:
        if field in cls._defaults:
            params.append(f"{field}=_defaults[{field!r}]")
            body.append(f"    _set(self, {field!r}, {field})")
        elif field in cls._factories:
            params.append(f"{field}=_MISSING")
            body.append(
                f"    _set(self, {field!r}, _factories[{field!r}]()"
                f" if {field} is _MISSING else {field})"
            )
        else:
            params.append(field)
            body.append(f"    _set(self, {field!r}, {field})")
    source = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body or ["    pass"])
    namespace: dict[str, Any] = {
        "_set": object.__setattr__,
        "_defaults": cls._defaults,
        "_factories": cls._factories,
        "_MISSING": _MISSING,
    }
    exec(compile(source, f"<{cls.__qualname__}.__init__>", "exec"), namespace)
    init: Callable[..., None] = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init  # type: ignore[method-assign]  # generated once, as @dataclass does
    return init


__all__ = ["Record"]
