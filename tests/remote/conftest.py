"""Fixtures for the remote-tier tests: real Redis servers on 127.0.0.1, never mocks.

A standalone server starts in ~20 ms, so every test gets a fresh one.  A
cluster takes ~2 s (`redis-cli --cluster create` sleeps in whole seconds), so
one is shared across the session and reset (keys, scripts, functions) before
each test; a test that breaks it (kills a node, changes its config) gets it
replaced for the next test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import pytest

from tests.redis_servers import RedisCluster, RedisServer, kill_all


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh, running standalone server, stopped (and its dir removed) after the test."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_server_factory() -> Iterator[Callable[..., RedisServer]]:
    """Start extra servers, e.g. `redis_server_factory(config={"maxmemory": "1mb"})`."""
    started: list[RedisServer] = []

    def make(config: Mapping[str, str | int] | None = None) -> RedisServer:
        server = RedisServer(config=config)
        started.append(server)
        return server.start().wait_ready()

    yield make
    for server in started:
        server.stop()


class _ClusterPool:
    """Holds the session's shared cluster and decides whether it is still reusable."""

    def __init__(self) -> None:
        self.cluster: RedisCluster | None = None
        self._config: list[dict[str, str]] = []

    def _config_now(self, cluster: RedisCluster) -> list[dict[str, str]]:
        result = []
        for node in cluster.nodes:
            with node.client(decode_responses=True) as c:
                result.append(c.config_get("*"))
        return result

    def acquire(self) -> RedisCluster:
        if self.cluster is not None and self.cluster.healthy():
            self.cluster.reset()
            return self.cluster
        self.discard()
        cluster = RedisCluster()
        try:
            cluster.start()
        except BaseException:
            cluster.stop()
            raise
        self.cluster, self._config = cluster, self._config_now(cluster)
        return cluster

    def release(self) -> None:
        cluster = self.cluster
        if cluster is None:
            return
        try:
            reusable = cluster.healthy() and self._config_now(cluster) == self._config
        except Exception:
            reusable = False
        if not reusable:
            self.discard()

    def discard(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
            self.cluster = None


@pytest.fixture(scope="session")
def _redis_cluster_pool() -> Iterator[_ClusterPool]:
    pool = _ClusterPool()
    yield pool
    pool.discard()


@pytest.fixture
def redis_cluster(_redis_cluster_pool: _ClusterPool) -> Iterator[RedisCluster]:
    """A healthy 3-master cluster with no keys; may be the one the previous test used."""
    cluster = _redis_cluster_pool.acquire()
    try:
        yield cluster
    finally:
        _redis_cluster_pool.release()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Safety net: no server started by this harness outlives the session."""
    kill_all()
