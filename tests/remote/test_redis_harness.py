"""The Redis harness itself: real servers start, serve, die and clean up as promised."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

import pytest
import redis

import tests.redis_servers as harness
from tests.redis_servers import (
    BUS_OFFSET,
    HOST,
    RedisCluster,
    RedisServer,
    free_port,
    require_redis_binaries,
)


def _gone(server: RedisServer, pid: int) -> bool:
    """The process is reaped and nothing listens on its port any more."""
    try:
        os.kill(pid, 0)
        return False
    except ProcessLookupError:
        pass
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((HOST, server.port)) != 0


def test_free_port_leaves_room_for_the_cluster_bus() -> None:
    ports = [free_port() for _ in range(20)]
    assert len(set(ports)) == len(ports)
    assert all(1024 < p <= 65535 - BUS_OFFSET for p in ports)
    assert not {p + BUS_OFFSET for p in ports} & set(ports)


def test_missing_binaries_fail_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(RuntimeError, match=r"scripts/setup\.sh"):
        require_redis_binaries()


def test_standalone_set_get_round_trip(redis_server: RedisServer) -> None:
    assert redis_server.alive()
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}"
    c = redis.Redis.from_url(redis_server.url)
    assert c.set("k", b"\x00binary\xff")
    assert c.get("k") == b"\x00binary\xff"
    assert redis_server.client().config_get("bind") == {"bind": HOST}


def test_kill_makes_the_client_fail_and_start_revives(redis_server: RedisServer) -> None:
    c = redis_server.client()
    c.set("k", "v")
    pid = redis_server.pid
    assert pid is not None
    redis_server.kill()
    assert not redis_server.alive()
    assert _gone(redis_server, pid)
    with pytest.raises(redis.ConnectionError):
        c.get("k")
    redis_server.start().wait_ready()  # same port, empty (nothing was persisted)
    assert c.get("k") is None


def test_pause_makes_the_client_time_out(redis_server: RedisServer) -> None:
    c = redis_server.client(socket_timeout=0.2)
    redis_server.pause()
    try:
        with pytest.raises(redis.TimeoutError):
            c.ping()
    finally:
        redis_server.resume()
    assert redis_server.client().ping()


def test_bind_cannot_be_overridden_and_bad_config_shows_the_log() -> None:
    with RedisServer(config={"bind": "0.0.0.0"}) as server:
        assert server.client().config_get("bind") == {"bind": HOST}
    bad = RedisServer(config={"maxmemory": "not-a-size"})
    try:
        with pytest.raises(RuntimeError, match=r"(?s)exited.*maxmemory"):
            bad.start().wait_ready(5)
    finally:
        bad.stop()


def test_port_lost_to_a_race_is_repicked(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as squatter:
        squatter.bind((HOST, 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        picks = iter([taken])
        real = harness.free_port
        monkeypatch.setattr(harness, "free_port", lambda: next(picks, None) or real())
        with RedisServer() as server:
            assert server.port != taken
            assert server.client().ping()


def test_stop_removes_process_and_dir(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory(config={"maxmemory": "1mb"})
    assert server.client().config_get("maxmemory") == {"maxmemory": str(1 << 20)}
    pid, workdir = server.pid, server.dir
    assert pid is not None
    server.stop()
    assert _gone(server, pid)
    assert not workdir.exists()


def test_cluster_spreads_keys_over_nodes(redis_cluster: RedisCluster) -> None:
    assert redis_cluster.url == f"redis+cluster://127.0.0.1:{redis_cluster.nodes[0].port}"
    c = redis_cluster.client()
    owners = {}
    for key in ("a", "b", "c", "d", "e", "f", "g", "h"):
        slot = c.keyslot(key)
        assert slot == redis_cluster.nodes[0].client().cluster("keyslot", key)
        owners[key] = c.get_node_from_key(key).port
        c.set(key, key.upper())
    assert set(owners.values()) == {n.port for n in redis_cluster.nodes}
    for key, port in owners.items():
        assert c.get(key) == key.upper().encode()
        node = next(n for n in redis_cluster.nodes if n.port == port)
        assert node.client().get(key) == key.upper().encode()  # stored on that node itself


def test_cluster_reset_empties_it(redis_cluster: RedisCluster) -> None:
    c = redis_cluster.client()
    c.mset_nonatomic({f"k{i}": i for i in range(50)})
    assert sum(n.client().dbsize() for n in redis_cluster.nodes) == 50
    redis_cluster.reset()
    assert sum(n.client().dbsize() for n in redis_cluster.nodes) == 0
    assert redis_cluster.healthy()


def test_cluster_kill_node_and_stop(redis_cluster: RedisCluster) -> None:
    pids = [n.pid for n in redis_cluster.nodes]
    victim = redis_cluster.nodes[0]
    redis_cluster.kill_node(0)
    assert not victim.alive() and _gone(victim, pids[0])
    assert all(n.alive() for n in redis_cluster.nodes[1:])
    redis_cluster.stop()
    for node, pid in zip(redis_cluster.nodes, pids, strict=True):
        assert pid is not None and _gone(node, pid)
        assert not node.alive()
