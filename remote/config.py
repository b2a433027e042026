"""Parsing `SIMPLER_REMOTE_STORAGE` (and `--remote`): which servers, and how.

The syntax follows ccache's `remote_storage`: space-separated URLs, each
optionally followed by ``|attribute`` or ``|attribute=value`` parts::

    redis://127.0.0.1:6379/0|read-only redis+cluster://10.0.0.5:7000|timeout=2

Attributes: ``read-only`` (fetch, never write: for untrusted branches),
``connect-timeout=SECONDS``, ``timeout=SECONDS`` (per read/write), and
``max-size=SIZE`` (ccache's suffixes: ``K``/``M``/``G``/``T`` are powers of
1000, ``Ki``/``Mi``/``Gi``/``Ti`` powers of 1024; cache/config.py) above
which a value is not pushed.  Environment variables give the defaults.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from simpler_build.remote.errors import RemoteConfigError

REMOTE_ENV = "SIMPLER_REMOTE_STORAGE"
CONNECT_TIMEOUT_ENV = "SIMPLER_REMOTE_CONNECT_TIMEOUT"
TIMEOUT_ENV = "SIMPLER_REMOTE_TIMEOUT"
MAX_SIZE_ENV = "SIMPLER_REMOTE_MAX_SIZE"

#: Short enough that an unreachable server costs a build well under a second.
DEFAULT_CONNECT_TIMEOUT = 0.5
#: Long enough for a 64 MiB value on a slow link, short enough not to hang CI.
DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_SIZE = 64 << 20

SCHEMES = {"redis": False, "redis+cluster": True}
#: `\Z`, not `$` (which also matches before a final newline); ASCII, so `\d` is [0-9]; a host
#: holds no whitespace and no "@" (a password's "@" is written %40, as in any URL).
_URL_RE = re.compile(
    r"^(?P<scheme>[a-z+]+)://(?:(?P<user>[^:@/]*)(?::(?P<password>[^@/]*))?@)?"
    r"(?P<host>\[[0-9a-fA-F:.]+\]|[^:/\[\]\s@]+)(?::(?P<port>\d+))?(?:/(?P<db>\d*))?\Z",
    re.ASCII,
)


@dataclass(frozen=True)
class RemoteSpec:
    """One configured remote: where it is and how to talk to it."""

    url: str  # as written, without attributes and without a password
    host: str
    port: int
    cluster: bool = False
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # repr()s end up in logs too
    read_only: bool = False
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    timeout: float = DEFAULT_TIMEOUT
    max_size: int = DEFAULT_MAX_SIZE

    def __str__(self) -> str:
        return self.url + ("|read-only" if self.read_only else "")


def _seconds(where: str, name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value > 3600:
        raise RemoteConfigError(where, f"{name}={text!r} is not a number of seconds in (0, 3600]")
    return value


def _size(where: str, name: str, text: str) -> int:
    from simpler_build.cache.config import parse_size

    try:
        return parse_size(text)
    except ValueError:
        raise RemoteConfigError(
            where, f"{name}={text!r} is not a size (bytes, or with K/M/G/T or Ki/Mi/Gi/Ti)"
        ) from None


def _defaults(environ: os._Environ[str] | dict[str, str]) -> dict[str, float | int]:
    out: dict[str, float | int] = {}
    if environ.get(CONNECT_TIMEOUT_ENV):
        out["connect_timeout"] = _seconds(
            CONNECT_TIMEOUT_ENV, "value", environ[CONNECT_TIMEOUT_ENV]
        )
    if environ.get(TIMEOUT_ENV):
        out["timeout"] = _seconds(TIMEOUT_ENV, "value", environ[TIMEOUT_ENV])
    if environ.get(MAX_SIZE_ENV):
        out["max_size"] = _size(MAX_SIZE_ENV, "value", environ[MAX_SIZE_ENV])
    return out


def _redacted(url: str) -> str:
    """`url` with its password, if it has one, shown as `***`: messages end up in CI logs."""
    scheme, sep, rest = url.partition("://")
    credentials, at, place = rest.rpartition("@")
    if not (sep and at and ":" in credentials):
        return url
    return f"{scheme}://{credentials.partition(':')[0]}:***@{place}"


def _unquote(text: str | None) -> str | None:
    """A URL's user or password, percent-decoded as redis-py's `from_url` does (`p%40ss`
    is `p@ss`); None when absent or empty."""
    if not text:
        return None
    if "%" not in text:
        return text
    from urllib.parse import unquote

    return unquote(text)


def parse_url(text: str, where: str = REMOTE_ENV, **defaults: float | int) -> RemoteSpec:
    """One ``URL[|attr[=value]...]`` item; RemoteConfigError names `where` and the item."""
    written, *attrs = text.split("|")
    m = _URL_RE.match(written)
    url = _redacted(written)  # what messages show: never the password
    if not m:
        if written.count("@") > 1:
            raise RemoteConfigError(
                where, f"{url!r} is not a URL: an '@' in a user or password is written %40"
            )
        raise RemoteConfigError(
            where, f"{url!r} is not a URL (expected redis://HOST:PORT[/DB] or redis+cluster://…)"
        )
    scheme = m.group("scheme")
    if scheme not in SCHEMES:
        known = ", ".join(f"{s}://" for s in SCHEMES)
        raise RemoteConfigError(where, f"{url!r}: unsupported scheme {scheme!r} (known: {known})")
    cluster = SCHEMES[scheme]
    port = int(m.group("port") or 6379)
    if not 0 < port < 65536:
        raise RemoteConfigError(where, f"{url!r}: port {port} is out of range")
    db_text = m.group("db") or ""
    db = int(db_text) if db_text else 0
    if cluster and db:
        raise RemoteConfigError(where, f"{url!r}: a Redis Cluster has only database 0")
    fields: dict[str, object] = dict(defaults)
    for attr in attrs:
        name, _, value = attr.partition("=")
        name = name.strip()
        if name == "read-only" and not value:
            fields["read_only"] = True
        elif name == "connect-timeout":
            fields["connect_timeout"] = _seconds(where, name, value)
        elif name == "timeout":
            fields["timeout"] = _seconds(where, name, value)
        elif name == "max-size":
            fields["max_size"] = _size(where, name, value)
        else:
            raise RemoteConfigError(
                where,
                f"{url!r}: unknown attribute {attr!r} "
                "(known: read-only, connect-timeout=S, timeout=S, max-size=BYTES)",
            )
    host = m.group("host").strip("[]")
    shown_host = f"[{host}]" if ":" in host else host  # an IPv6 address keeps its brackets
    shown = f"{scheme}://{shown_host}:{port}" + (f"/{db}" if db_text else "")
    return RemoteSpec(
        url=shown,
        host=host,
        port=port,
        cluster=cluster,
        db=db,
        username=_unquote(m.group("user")),
        password=_unquote(m.group("password")),
        **fields,  # type: ignore[arg-type]
    )


def parse_remote_storage(
    text: str | None, where: str = REMOTE_ENV, environ: dict[str, str] | None = None
) -> list[RemoteSpec]:
    """Every remote in a space-separated list (empty or None: no remote)."""
    defaults = _defaults(os.environ if environ is None else environ)
    return [parse_url(item, where, **defaults) for item in (text or "").split()]


def remotes_from_env(environ: dict[str, str] | None = None) -> list[RemoteSpec]:
    """The remotes `SIMPLER_REMOTE_STORAGE` names (none when unset or empty)."""
    env = os.environ if environ is None else environ
    return parse_remote_storage(env.get(REMOTE_ENV), REMOTE_ENV, dict(env))


__all__ = [
    "CONNECT_TIMEOUT_ENV",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_SIZE",
    "DEFAULT_TIMEOUT",
    "MAX_SIZE_ENV",
    "REMOTE_ENV",
    "TIMEOUT_ENV",
    "RemoteSpec",
    "parse_remote_storage",
    "parse_url",
    "remotes_from_env",
]
