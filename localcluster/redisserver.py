"""A real Redis server (Debian's ``redis-server``), alone or as a cluster of several.

The binary is ``MODELLOOP_REDIS_SERVER`` or ``redis-server`` on the PATH
(hack/install-system-deps.sh installs it); ``redis-cli`` beside it joins a cluster. A
missing binary is an error, never a skip.
"""

import os
import shutil
import socket
import subprocess
from pathlib import Path

from localcluster.processes import Process, free_port
from localcluster.waiting import wait_for


class MissingRedis(RuntimeError):
    pass


def redis_server_binary() -> Path:
    for candidate in (os.environ.get("MODELLOOP_REDIS_SERVER"), shutil.which("redis-server")):
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise MissingRedis("redis-server not found: run hack/install-system-deps.sh (Debian package)")


def _reply(port: int, command: bytes) -> bytes:
    """The first bytes of the server's answer to an inline command; b"" when it is down."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
            connection.sendall(command)
            return connection.recv(4096)
    except OSError:
        return b""


class RedisServer:
    """One ``redis-server`` on a free loopback port, its data and log under ``workdir``.

    Persistence is an append-only file fsynced every write, so ``kill()`` and
    ``start_again()`` keep what was written: what a restart of the shared store is.
    """

    def __init__(self, workdir: Path, name: str = "redis", cluster: bool = False) -> None:
        self.workdir = workdir
        self.name = name
        self.cluster = cluster
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.bus_port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = self._start()

    def _start(self) -> Process:
        argv = [
            str(redis_server_binary()),
            *("--port", str(self.port), "--bind", "127.0.0.1"),
            *("--dir", str(self.workdir), "--save", ""),
            *("--appendonly", "yes", "--appendfsync", "always"),
            *("--daemonize", "no", "--loglevel", "warning"),
        ]
        if self.cluster:
            # The cluster bus on a free port of its own (by default port + 10000: maybe taken,
            # maybe past 65535).
            argv += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
            argv += ["--cluster-port", str(self.bus_port)]
        process = Process(self.name, argv, self.workdir)

        def ready() -> bool:
            process.check_running()
            return _reply(self.port, b"PING\r\n").startswith(b"+PONG")

        try:
            wait_for(ready, 30, f"{self.name} answering PING on {self.port}", interval=0.05)
        except BaseException:
            process.stop()
            raise
        return process

    def start_again(self) -> None:
        """After ``stop()`` or ``kill()``: the same port and data."""
        self.process = self._start()

    def kill(self) -> None:
        self.process.kill()

    def stop(self) -> None:
        self.process.stop()


class RedisCluster:
    """``nodes`` masters in cluster mode, no replicas, the 16384 slots spread over them."""

    def __init__(self, workdir: Path, nodes: int = 3) -> None:
        self.servers = [
            RedisServer(workdir / f"node-{i}", f"redis-node-{i}", cluster=True)
            for i in range(nodes)
        ]
        try:
            cli = redis_server_binary().with_name("redis-cli")
            created = subprocess.run(
                [
                    str(cli),
                    *("--cluster", "create"),
                    *(f"127.0.0.1:{s.port}" for s in self.servers),
                    *("--cluster-replicas", "0", "--cluster-yes"),
                ],
                capture_output=True,
                text=True,
                timeout=60,
            )
            if created.returncode != 0:
                raise MissingRedis(f"redis-cli --cluster create failed: {created.stdout}")
            wait_for(
                lambda: all(
                    b"cluster_state:ok" in _reply(s.port, b"CLUSTER INFO\r\n") for s in self.servers
                ),
                30,
                "cluster_state:ok on every node",
                interval=0.1,
            )
        except BaseException:
            self.stop()
            raise
        self.url = f"redis://127.0.0.1:{self.servers[0].port}/0"

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
