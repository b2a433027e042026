"""Real, throwaway Redis servers on loopback for the remote-tier tests.

The remote cache tier must be tested against a real `redis-server` (and a
real cluster), never a mock: the bugs worth catching live in the wire
protocol, cluster redirection and server death.  Everything here binds to
127.0.0.1 only, uses private temp dirs, and bounds every wait.  Servers that
outlive their test are killed by `kill_all()` (pytest session end and
`atexit`) and, on Linux, by the kernel when the starting thread dies; temp
dirs left by a SIGKILLed test process are swept on the next import.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import redis
import redis.cluster
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = [
    "BUS_OFFSET",
    "HOST",
    "RedisCluster",
    "RedisServer",
    "free_port",
    "kill_all",
    "require_redis_binaries",
]

HOST = "127.0.0.1"
BUS_OFFSET = 10000  # Redis Cluster's bus listens on port + 10000.
MAX_PORT = 65535 - BUS_OFFSET
CLUSTER_SLOTS = 16384

_lock = threading.Lock()
_handed_out: set[int] = set()  # ports (and their bus ports) given out by this process
_owned: set[RedisServer] = set()  # started and not yet stop()ped: process and/or temp dir
_DIR_PREFIX = "simpler-redis-"


def require_redis_binaries() -> None:
    """Fail loudly (never skip) when redis is missing, so a broken setup can't pass CI."""
    missing = [b for b in ("redis-server", "redis-cli") if shutil.which(b) is None]
    if missing:
        raise RuntimeError(
            f"{' and '.join(missing)} not found on PATH; the remote-tier tests need a real "
            "Redis. Run scripts/setup.sh (installs redis-server and redis-tools)."
        )


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A currently free 127.0.0.1 port whose cluster bus port (port+10000) is free too.

    Ports come from the kernel (bind to 0), so they don't collide with fixed
    ports other tools use; ports above 55535 are rejected because their bus
    port would not exist.  Never hands out the same port twice per process,
    so a cluster's nodes can't be given each other's ports before binding.
    """
    for _ in range(500):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        with _lock:
            if port > MAX_PORT or {port, port + BUS_OFFSET} & _handed_out:
                continue
            if _bindable(port) and _bindable(port + BUS_OFFSET):
                _handed_out.update((port, port + BUS_OFFSET))
                return port
    raise RuntimeError(f"no free port pair (p, p+{BUS_OFFSET}) found on {HOST}")


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILLed if the starting thread dies (even by SIGKILL)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _sweep_stale_dirs() -> None:
    """Remove temp dirs whose owning test process is dead (it was SIGKILLed, say)."""
    for path in Path(tempfile.gettempdir()).glob(f"{_DIR_PREFIX}*-*-*"):
        try:
            os.kill(int(path.name.split("-")[2]), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except (ValueError, OSError):
            pass  # not ours, or the owner is alive (maybe as another user)


class RedisServer:
    """One `redis-server` process on 127.0.0.1 with its own temp dir.

    `config` adds directives (`{"maxmemory": "10mb"}`); they override the
    defaults.  After `kill()` the same server can be `start()`ed again on the
    same port, to test clients across a server restart.  Start servers from a
    thread that outlives them (pytest's main thread): on Linux the server is
    SIGKILLed when the thread that started it exits.
    """

    def __init__(self, port: int | None = None, config: Mapping[str, str | int] | None = None):
        require_redis_binaries()
        self._auto_port = port is None
        self._port = free_port() if port is None else port
        self._config = dict(config or {})
        self._tmpdir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self._port}"

    @property
    def dir(self) -> Path:
        """The server's private working dir (logs, cluster config)."""
        if self._tmpdir is None:
            prefix = f"{_DIR_PREFIX}{os.getpid()}-{self._port}-"  # owner pid: see the sweep
            self._tmpdir = Path(tempfile.mkdtemp(prefix=prefix))
        return self._tmpdir

    @property
    def log_path(self) -> Path:
        return self.dir / "redis.log"

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _argv(self) -> list[str]:
        # Bind and protected-mode can't be overridden: nothing here may listen beyond loopback.
        settings: dict[str, str | int] = {
            "daemonize": "no",
            "save": "",
            "appendonly": "no",
            "logfile": "",
            "enable-debug-command": "local",  # DEBUG SLEEP etc., to simulate a stuck server
            **self._config,
            "bind": HOST,
            "port": self._port,
            "dir": str(self.dir),
            "protected-mode": "yes",
        }
        argv = ["redis-server"]
        for key, value in settings.items():
            argv += [f"--{key}", str(value)]
        return argv

    def start(self) -> Self:
        """Launch the process (does not wait; see `wait_ready`)."""
        if self.alive():
            raise RuntimeError(f"redis-server on port {self._port} is already running")
        with _lock:
            _owned.add(self)
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                self._argv(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a ^C to pytest must not kill it mid-test
                preexec_fn=_die_with_parent,
            )
        return self

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError as e:
            return f"<no log: {e}>"

    def _port_taken(self) -> bool:
        return "Address already in use" in self.log_tail(5)

    def wait_ready(self, timeout: float = 10.0) -> Self:
        """Poll PING until the server answers; on an auto-picked port lost to a race, re-pick."""
        deadline = time.monotonic() + timeout
        retries = 5
        probe = self.client(socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            while True:
                if not self.alive():
                    if self._auto_port and retries > 0 and self._port_taken():
                        retries -= 1
                        self._reap()
                        self._port = free_port()
                        probe.close()
                        probe = self.client(socket_timeout=0.5, socket_connect_timeout=0.5)
                        self.start()
                        continue
                    rc = self._proc.returncode if self._proc else None
                    raise RuntimeError(
                        f"redis-server on port {self._port} exited (rc={rc}) before "
                        f"answering PING; log tail:\n{self.log_tail()}"
                    )
                try:
                    if probe.ping():
                        return self
                except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                    pass
                if time.monotonic() >= deadline:
                    raise RuntimeError(
                        f"redis-server on port {self._port} not ready after {timeout}s; "
                        f"log tail:\n{self.log_tail()}"
                    )
                time.sleep(0.01)
        finally:
            probe.close()

    def client(self, **kwargs: Any) -> redis.Redis:
        """A client with bounded timeouts and no retries, so server death shows at once."""
        opts: dict[str, Any] = {
            "socket_timeout": 5.0,
            "socket_connect_timeout": 5.0,
            "retry": Retry(NoBackoff(), 0),
            **kwargs,
        }
        return redis.Redis(host=HOST, port=self._port, **opts)

    def _reap(self, grace: float = 0.0) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None and grace > 0:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(grace)
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(10)

    def kill(self) -> None:
        """SIGKILL and reap: the server dies like a crash (no shutdown, tmpdir kept)."""
        self._reap()

    def pause(self) -> None:
        """SIGSTOP: the port stays open but nothing answers, like a hung server."""
        if self._proc is not None and self.alive():
            os.kill(self._proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None and self.alive():
            os.kill(self._proc.pid, signal.SIGCONT)

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM (SIGKILL after `grace` s), reap, and delete the temp dir."""
        self.resume()  # a stopped process can't act on SIGTERM
        self._reap(grace)
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
        with _lock:
            _owned.discard(self)

    def __enter__(self) -> Self:
        try:
            self.start().wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RedisServer(port={self._port}, pid={self.pid}, alive={self.alive()})"


class RedisCluster:
    """A real Redis Cluster on loopback: `masters` primaries (+ `replicas` each), all slots.

    Built with `redis-cli --cluster create`, the way operators do it, then
    polled until every node reports `cluster_state:ok` and all 16384 slots.
    """

    def __init__(
        self,
        masters: int = 3,
        replicas: int = 0,
        node_timeout_ms: int = 2000,
        config: Mapping[str, str | int] | None = None,
    ):
        if masters < 3:
            raise ValueError("redis-cli --cluster create needs at least 3 masters")
        self.replicas = replicas
        cluster_config = {
            **(config or {}),
            "cluster-enabled": "yes",
            "cluster-config-file": "nodes.conf",  # relative to the node's own dir
            "cluster-node-timeout": node_timeout_ms,
        }
        self._nodes = [RedisServer(config=cluster_config) for _ in range(masters * (1 + replicas))]

    @property
    def nodes(self) -> list[RedisServer]:
        return list(self._nodes)

    @property
    def url(self) -> str:
        return f"redis+cluster://{HOST}:{self._nodes[0].port}"

    def start(self, timeout: float = 30.0) -> Self:
        """Start the nodes, join them into a cluster and wait until it serves all slots."""
        deadline = time.monotonic() + timeout
        for node in self._nodes:
            node.start()
        for node in self._nodes:
            node.wait_ready(max(0.1, deadline - time.monotonic()))
        cmd = [
            "redis-cli",
            "--cluster",
            "create",
            *(f"{HOST}:{n.port}" for n in self._nodes),
            "--cluster-replicas",
            str(self.replicas),
            "--cluster-yes",
        ]
        try:
            out = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                timeout=max(1.0, deadline - time.monotonic()),
            )
        except subprocess.TimeoutExpired as e:
            raise RuntimeError(f"{' '.join(cmd)} timed out:\n{e.stdout}\n{e.stderr}") from e
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}")
        self.wait_ok(max(0.1, deadline - time.monotonic()))
        return self

    def _node_ok(self, node: RedisServer) -> bool:
        try:
            with node.client(socket_timeout=0.5, socket_connect_timeout=0.5) as c:
                info = c.execute_command("CLUSTER INFO")
        except redis.RedisError:
            return False
        return (
            info.get("cluster_state") == "ok"
            and int(info.get("cluster_slots_assigned", 0)) == CLUSTER_SLOTS
            and int(info.get("cluster_known_nodes", 0)) == len(self._nodes)
        )

    def healthy(self) -> bool:
        """Every node alive and agreeing the cluster is ok with all slots served."""
        return all(n.alive() and self._node_ok(n) for n in self._nodes)

    def wait_ok(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if time.monotonic() >= deadline:
                report = "\n".join(
                    f"{n!r}:\n{n.log_tail(8)}" for n in self._nodes if not self._node_ok(n)
                )
                raise RuntimeError(f"cluster not ok after {timeout}s; bad nodes:\n{report}")
            time.sleep(0.05)

    def client(self, **kwargs: Any) -> redis.cluster.RedisCluster:
        """A cluster client seeded with the first node, bounded timeouts, no retries."""
        opts: dict[str, Any] = {
            "socket_timeout": 5.0,
            "socket_connect_timeout": 5.0,
            "retry": Retry(NoBackoff(), 0),
            **kwargs,
        }
        return redis.cluster.RedisCluster(host=HOST, port=self._nodes[0].port, **opts)

    def reset(self) -> None:
        """Drop all keys, scripts and functions on every primary, so a test can reuse it."""
        for node in self._nodes:
            with node.client() as c:
                if c.info("replication")["role"] == "master":  # replicas follow their primary
                    c.flushall()
                    c.script_flush()
                    c.function_flush()

    def kill_node(self, i: int) -> None:
        self._nodes[i].kill()

    def stop(self) -> None:
        for node in self._nodes:
            node.stop()

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def kill_all() -> None:
    """SIGKILL every server this process started and did not stop, and drop its dir."""
    with _lock:
        leftovers = list(_owned)
    for server in leftovers:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            server.stop(grace=0)


atexit.register(kill_all)
_sweep_stale_dirs()
