"""RemoteStorage: one Redis server or Redis Cluster holding cache objects.

A dumb, untrusted byte store.  Keys (docs/architecture.md "Remote tier"):

    simpler:v1:obj:<xxh3>    the object's bytes
    simpler:v1:meta:<xxh3>   JSON: size, sha256, arch, runtime, build_id, role, created

It verifies nothing: the cache layer (`simpler_build.cache.transfer`) checks
every pulled byte against the fingerprint and the manifest's SHA-256.  It
also never raises for a server problem.  Unreachable, slow, broken, OOM or
read-only servers produce one warning per process and per URL, are counted
in `errors`, and the caller carries on with what it got.  A standalone
server that failed once is skipped for the rest of the process; a cluster is
asked key by key after a failed batch, so one dead node costs only its slots.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Container, Iterable, Iterator, Sequence
from contextlib import suppress
from typing import Any

from simpler_build import log
from simpler_build.remote.config import RemoteSpec

KEY_PREFIX = "simpler:v1:"
#: A pipeline carries at most this many objects or this many bytes.  Small
#: enough that redis-py's reader never holds a huge reply buffer (on loopback
#: 64 MiB batches fetched 2.5k objects/s, 4 MiB 5.6k/s), large enough that a
#: real network's round trips are amortised over ~10 objects of 365 KB.
BATCH_OBJECTS = 256
BATCH_BYTES = 4 << 20

_warned: set[str] = set()
_warned_lock = threading.Lock()


def obj_key(fingerprint: str) -> str:
    return f"{KEY_PREFIX}obj:{fingerprint}"


def meta_key(fingerprint: str) -> str:
    return f"{KEY_PREFIX}meta:{fingerprint}"


def warn_once(key: str, message: str) -> None:
    """Warn (simpler_build.log.warn: logged, printed unless a handler shows it) the first
    time `key` is seen in this process."""
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    log.warn(__name__, message)


def reset_warnings() -> None:
    """Forget which warnings were printed (tests only)."""
    with _warned_lock:
        _warned.clear()


_PIPELINE_PREFIX = re.compile(r"Command # \d+ \(.*?\) of pipeline caused error: ", re.S)


def _problem(exc: BaseException) -> str:
    """One printable line: redis-py quotes the failing command, binary payload included."""
    text = _PIPELINE_PREFIX.sub("", str(exc)).strip()
    text = text.splitlines()[0] if text else ""
    text = "".join(c if c.isprintable() else "?" for c in text)[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def batches(items: Sequence[Any], size_of: Any = None) -> Iterable[list[Any]]:
    """Split `items` into pipelines of at most BATCH_OBJECTS objects / BATCH_BYTES bytes."""
    batch: list[Any] = []
    held = 0
    for item in items:
        size = size_of(item) if size_of else 0
        if batch and (len(batch) >= BATCH_OBJECTS or held + size > BATCH_BYTES):
            yield batch
            batch, held = [], 0
        batch.append(item)
        held += size
    if batch:
        yield batch


def _cluster_down(exc: BaseException) -> bool:
    """CLUSTERDOWN: the cluster refuses every key now, so asking key by key is futile."""
    from redis.exceptions import ClusterDownError

    return isinstance(exc, ClusterDownError)


class RemoteObject:
    """What a server returned for one fingerprint: bytes plus its (unverified) metadata."""

    __slots__ = ("data", "fingerprint", "meta")

    def __init__(self, fingerprint: str, data: bytes, meta: dict[str, Any] | None) -> None:
        self.fingerprint = fingerprint
        self.data = data
        self.meta = meta


def _parse_meta(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        meta = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return meta if isinstance(meta, dict) else None


class RemoteStorage:
    """A connection (made lazily) to one configured remote."""

    def __init__(self, spec: RemoteSpec) -> None:
        self.spec = spec
        self._client: Any = None
        #: Why the server is no longer used in this process (None while usable).
        self.broken: str | None = None
        #: Failed requests (a failed pipeline counts once, a failed key once).
        self.errors = 0

    def __repr__(self) -> str:
        return f"RemoteStorage({str(self.spec)!r})"

    @property
    def url(self) -> str:
        return self.spec.url

    @property
    def writable(self) -> bool:
        return not self.spec.read_only

    @property
    def usable(self) -> bool:
        return self.broken is None

    # -- connection and failure ----------------------------------------------------

    def _connect(self) -> Any:
        if self._client is not None:
            return self._client
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        spec = self.spec
        common: dict[str, Any] = {
            "socket_connect_timeout": spec.connect_timeout,
            "socket_timeout": spec.timeout,
            "username": spec.username,
            "password": spec.password,
        }
        if spec.cluster:
            from redis.cluster import RedisCluster

            # Discovery from the one given node; one retry lets the client
            # follow a MOVED/refresh its slot map, no more (bounded).
            self._client = RedisCluster(
                host=spec.host,
                port=spec.port,
                retry=Retry(NoBackoff(), 1),
                cluster_error_retry_attempts=1,
                **common,
            )
        else:
            from redis import Redis

            self._client = Redis(
                host=spec.host, port=spec.port, db=spec.db, retry=Retry(NoBackoff(), 0), **common
            )
        return self._client

    def _fail(self, exc: BaseException, doing: str, fatal: bool = True) -> None:
        """Count, warn once, and (standalone, or when fatal) stop using this server."""
        self.errors += 1
        problem = _problem(exc)
        if fatal:
            self.broken = problem
        warn_once(
            self.spec.url,
            f"remote storage {self.spec.url}: {doing} failed ({problem}); "
            "continuing with the local cache",
        )

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with suppress(Exception):  # closing a dead connection must not fail a build
                client.close()

    # -- reads ---------------------------------------------------------------------

    def get_many(
        self,
        fingerprints: Sequence[str],
        sizes: dict[str, int] | None = None,
        meta_for: Container[str] | None = None,
    ) -> dict[str, RemoteObject]:
        """Objects for those fingerprints the server holds (all batches; see iter_get)."""
        found: dict[str, RemoteObject] = {}
        for batch in self.iter_get(fingerprints, sizes, meta_for):
            found.update(batch)
        return found

    def iter_get(
        self,
        fingerprints: Sequence[str],
        sizes: dict[str, int] | None = None,
        meta_for: Container[str] | None = None,
    ) -> Iterator[dict[str, RemoteObject]]:
        """What the server holds, one pipelined batch at a time.

        One round trip per batch, not per object, and at most one batch
        (BATCH_BYTES) in memory.  Metadata is read only for the fingerprints
        in `meta_for` (default: all): a caller that holds a manifest SHA-256
        does not need the server's word, and in a cluster each extra key is
        one more node that can be down.  Missing keys are simply absent from
        a batch; so are keys a failed request did not return (counted in
        `errors`).
        """
        sizes = sizes or {}
        for batch in batches(list(fingerprints), lambda fp: sizes.get(fp, 0)):
            if not self.usable:
                return
            plan = [(fp, meta_for is None or fp in meta_for) for fp in batch]
            try:
                got = self._get_batch(plan)
            except Exception as exc:  # redis errors, OSError, protocol errors
                if not self.spec.cluster:
                    self._fail(exc, "read")
                    return
                self._fail(exc, "read", fatal=_cluster_down(exc))
                got = self._get_one_by_one(plan) if self.usable else {}
            yield got

    def _get_batch(self, plan: list[tuple[str, bool]]) -> dict[str, RemoteObject]:
        client = self._connect()
        pipe = client.pipeline(transaction=False)
        for fp, with_meta in plan:
            pipe.get(obj_key(fp))
            if with_meta:
                pipe.get(meta_key(fp))
        replies = iter(pipe.execute())
        out: dict[str, RemoteObject] = {}
        for fp, with_meta in plan:
            data = next(replies)
            meta = _parse_meta(next(replies)) if with_meta else None
            if isinstance(data, bytes):
                out[fp] = RemoteObject(fp, data, meta)
        return out

    def _get_one_by_one(self, plan: list[tuple[str, bool]]) -> dict[str, RemoteObject]:
        """After a failed cluster pipeline: each key on its own, so live nodes still answer.

        Bounded: a cluster that reports itself down (every node refuses every
        key) ends it, and so does the read timeout spent on the whole batch.
        """
        out: dict[str, RemoteObject] = {}
        deadline = time.monotonic() + self.spec.timeout
        for fp, with_meta in plan:
            if time.monotonic() > deadline:
                self._fail(TimeoutError("cluster fallback took too long"), "read")
                break
            try:
                client = self._connect()
                data = client.get(obj_key(fp))
                if isinstance(data, bytes):
                    meta = _parse_meta(client.get(meta_key(fp))) if with_meta else None
                    out[fp] = RemoteObject(fp, data, meta)
            except Exception as exc:
                self._fail(exc, "read", fatal=_cluster_down(exc))
                if not self.usable:
                    break
        return out

    def present(self, fingerprints: Sequence[str]) -> set[str] | None:
        """Which objects the server holds (EXISTS, pipelined); None when it cannot say."""
        if not self.usable:
            return None
        have: set[str] = set()
        try:
            client = self._connect()
            for batch in batches(list(fingerprints)):
                pipe = client.pipeline(transaction=False)
                for fp in batch:
                    pipe.exists(obj_key(fp))
                for fp, n in zip(batch, pipe.execute(), strict=True):
                    if n:
                        have.add(fp)
        except Exception as exc:
            self._fail(exc, "lookup")
            return None
        return have

    # -- writes --------------------------------------------------------------------

    def put_many(self, items: Sequence[tuple[str, bytes, dict[str, Any]]]) -> int:
        """Store (fingerprint, bytes, metadata) items, pipelined; returns bytes stored.

        The object is written before its metadata, so a reader that sees
        metadata also sees the object (and a reader never relies on either).
        """
        if not self.writable or not self.usable:
            return 0
        stored = 0
        try:
            client = self._connect()
            for batch in batches(list(items), lambda it: len(it[1])):
                pipe = client.pipeline(transaction=False)
                for fp, data, meta in batch:
                    pipe.set(obj_key(fp), data)
                    pipe.set(meta_key(fp), json.dumps({**meta, "created": time.time()}))
                pipe.execute()
                stored += sum(len(data) for _fp, data, _meta in batch)
        except Exception as exc:
            self._fail(exc, "write")
        return stored


__all__ = [
    "KEY_PREFIX",
    "RemoteObject",
    "RemoteStorage",
    "meta_key",
    "obj_key",
    "reset_warnings",
    "warn_once",
]
