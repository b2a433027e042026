"""Persistent cache settings, like ccache's ``ccache.conf``: one file in the cache root.

``<root>/simpler-build.conf`` holds ``key = value`` lines (``#`` starts a
comment).  A setting comes from, in order of precedence: its environment
variable, the file, the built-in default; `Setting.origin` says which.
`simpler-build cache config` lists and changes them.  The file is replaced
atomically (temp file, fsync, rename, fsync of the directory), so a crash
leaves the old file or the new one, never half of each.

Sizes use ccache's suffixes (`parse_size`): K/M/G/T are powers of 1000,
Ki/Mi/Gi/Ti powers of 1024, and a trailing ``B`` is optional.  The same
parser reads the remote tier's ``max-size`` (remote/config.py).
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from simpler_build.cache._record import Record
from simpler_build.cache.errors import CacheError

TYPE_CHECKING = False  # no typing or dataclasses: `cache stats` and warm's cleanup read this
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

CONFIG_NAME = "simpler-build.conf"
#: ccache's default max_size (5 GiB).
DEFAULT_MAX_SIZE = 5 * 1024**3

#: ASCII: `\d` would take any script's digits, which float() reads too ("\u0661G" as 1G).
_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(?:([kmgt])(i?)b?|b)?\Z", re.IGNORECASE | re.ASCII)
_EXPONENT = {"k": 1, "m": 2, "g": 3, "t": 4}


class ConfigError(CacheError, ValueError):
    """A config file, key or value that cannot be used (the path names the file)."""


def parse_size(text: str) -> int:
    """Bytes from '123', '500K' (500 000), '10Mi' (10 * 2**20), '1.5GB', '2TiB'.

    Raises ValueError naming the text: K/M/G/T are decimal, Ki/Mi/Gi/Ti binary (ccache's).
    """
    m = _SIZE_RE.match(text.strip())
    if not m:
        raise ValueError(
            f"invalid size {text!r} "
            "(bytes, or a number with K/M/G/T = 1000^n or Ki/Mi/Gi/Ti = 1024^n)"
        )
    number, unit, binary = m.group(1), (m.group(2) or "").lower(), m.group(3)
    scale = (1024 if binary else 1000) ** _EXPONENT[unit] if unit else 1
    return int(float(number) * scale)


def format_size(n: int) -> str:
    """`n` bytes for people, in binary units (`5.0 GiB`), which cannot be misread."""
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


class Key(Record):
    """One setting: its environment override, default, and how its value is checked."""

    _fields = ("name", "env", "default", "parse", "help")
    __slots__ = _fields
    name: str
    env: str
    default: str
    parse: Callable[[str], int]
    help: str


KEYS: dict[str, Key] = {
    "max_size": Key(
        "max_size",
        "SIMPLER_CACHE_MAX_SIZE",
        "5Gi",
        parse_size,
        "bound on everything under the cache root that gc enforces; 0 = unlimited",
    ),
}


class Setting(Record):
    """A setting's current value and where it comes from."""

    _fields = ("key", "value", "origin", "where")
    __slots__ = _fields
    key: str
    value: str
    #: "environment" (the variable's name is in `where`), "file" or "default".
    origin: str
    where: str

    @property
    def parsed(self) -> int:
        return KEYS[self.key].parse(self.value)


def config_path(root: Path) -> Path:
    return root / CONFIG_NAME


def _check(path: Path, key: str, value: str, line: int | None = None) -> None:
    at = f"line {line}: " if line is not None else ""
    if key not in KEYS:
        raise ConfigError(path, f"{at}unknown key {key!r} (known: {', '.join(sorted(KEYS))})")
    try:
        KEYS[key].parse(value)
    except ValueError as exc:
        raise ConfigError(path, f"{at}{key}: {exc}") from None


def read_file(root: Path) -> dict[str, str]:
    """The file's settings ({} when there is none); ConfigError for a bad line, key or value."""
    path = config_path(root)
    try:
        from simpler_build.cache.atomic import read_nofollow

        raw = read_nofollow(path)
    except FileNotFoundError:
        return {}
    except NotADirectoryError:
        return {}
    except OSError as exc:
        raise ConfigError(path, f"cannot read it: {exc.strerror or exc}") from None
    except CacheError as exc:
        raise ConfigError(path, exc.problem) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(path, "not UTF-8 text") from None
    out: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        key, eq, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not key:
            raise ConfigError(path, f"line {number}: expected 'key = value', got {line!r}")
        _check(path, key, value, number)
        out[key] = value
    return out


def settings(root: Path, environ: Mapping[str, str] | None = None) -> dict[str, Setting]:
    """Every key with its effective value and origin (environment > file > default)."""
    env = os.environ if environ is None else environ
    stored = read_file(root)
    out: dict[str, Setting] = {}
    for name, key in KEYS.items():
        if env.get(key.env):
            value = env[key.env]
            try:
                key.parse(value)
            except ValueError as exc:
                raise ConfigError(Path(key.env), str(exc)) from None
            out[name] = Setting(name, value, "environment", key.env)
        elif name in stored:
            out[name] = Setting(name, stored[name], "file", str(config_path(root)))
        else:
            out[name] = Setting(name, key.default, "default", "")
    return out


def max_size(root: Path, environ: Mapping[str, str] | None = None) -> int | None:
    """The configured bound in bytes, or None for unlimited (max_size = 0, as in ccache)."""
    n = settings(root, environ)["max_size"].parsed
    return n or None


def set_value(root: Path, key: str, value: str | None) -> None:
    """Write `key = value` to the file (None removes the key), replacing it atomically.

    Other keys and comments are kept.  Concurrent writers: the last rename wins.
    """
    path = config_path(root)
    if value is not None:
        value = value.strip()
        _check(path, key, value)
    elif key not in KEYS:
        _check(path, key, "")
    read_file(root)  # refuse to rewrite a file that is already broken
    if root.exists() and not root.is_dir():
        raise ConfigError(path, f"cannot write it: the cache root {root} is not a directory")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        lines = []
    except OSError as exc:
        raise ConfigError(path, f"cannot read it: {exc.strerror or exc}") from None
    kept: list[str] = []
    done = False
    for line in lines:
        name = line.split("#", 1)[0].partition("=")[0].strip()
        if name == key:
            if value is not None and not done:
                kept.append(f"{key} = {value}")
                done = True
            continue
        kept.append(line)
    if value is not None and not done:
        kept.append(f"{key} = {value}")
    _replace(path, "".join(f"{line}\n" for line in kept))


def _replace(path: Path, text: str) -> None:
    from simpler_build.cache.atomic import fsync_dir, open_locked_temp
    from simpler_build.cache.layout import TEMP_PREFIX

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f"{TEMP_PREFIX}{CONFIG_NAME}-{os.getpid()}-{os.urandom(6).hex()}"
        fd = open_locked_temp(tmp)  # locked until renamed: gc can tell a dead writer's
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
                os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        fsync_dir(path.parent)
    except OSError as exc:
        raise ConfigError(path, f"cannot write it: {exc.strerror or exc}") from None


__all__ = [
    "CONFIG_NAME",
    "DEFAULT_MAX_SIZE",
    "KEYS",
    "ConfigError",
    "Setting",
    "config_path",
    "format_size",
    "max_size",
    "parse_size",
    "read_file",
    "set_value",
    "settings",
]
