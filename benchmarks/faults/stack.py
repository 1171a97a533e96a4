"""The real processes of a fault scenario: our own Redis and Kafka, and ``chatcore`` itself.

:class:`Services` drives ``scripts/services`` on ports and a data folder of its own
(never the shared instances on the default ports), so a scenario may kill, flush or
restart them. :class:`Stack` runs ``chatcore init`` and then either one
``chatcore serve --backend production`` process or a ``chatcore gateway`` plus a
``chatcore worker``, on those services and a SQLite message store
(``CHATCORE_SQLITE_STORE``), and reads the store back after the run.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx
import msgspec

from benchmarks.faults.ledger import Row
from chatcore.client import ChatClient, ClientOptions
from chatcore.model import StoredMessage
from chatcore.server.auth import TokenAuthority

__all__ = ["FaultFailed", "Node", "Services", "Stack", "free_port"]

REPO = Path(__file__).resolve().parents[2]
SECRET = "chatcore-faults-secret-0123456789abcdef"


class FaultFailed(Exception):
    """A scenario could not run (a process did not start, a service did not come back)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Services:
    """Redis and Kafka of our own, through ``scripts/services`` (start, kill, stop)."""

    data: Path
    redis_port: int = 16379
    kafka_port: int = 19092

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            CHATCORE_SERVICES_DATA=str(self.data),
            CHATCORE_REDIS_PORT=str(self.redis_port),
            CHATCORE_KAFKA_PORT=str(self.kafka_port),
            CHATCORE_KAFKA_CONTROLLER_PORT=str(self.kafka_port + 1),
        )
        return env

    async def run(self, *args: str, timeout_s: float = 240.0, prefix: tuple[str, ...] = ()) -> str:
        """Run ``scripts/services ARGS``; raise FaultFailed when it fails or hangs."""
        try:
            with anyio.fail_after(timeout_s):
                done = await anyio.run_process(
                    [*prefix, str(REPO / "scripts" / "services"), *args],
                    env=self.env(),
                    check=False,
                )
        except TimeoutError:
            what = f"scripts/services {' '.join(args)}: no answer in {timeout_s} s"
            raise FaultFailed(what) from None
        out = (done.stdout + done.stderr).decode(errors="replace")
        if done.returncode != 0:
            raise FaultFailed(f"scripts/services {' '.join(args)} failed:\n{out[-3000:]}")
        return out

    async def start(self, *names: str) -> None:
        await self.run("start", *names)

    async def kill(self, *names: str) -> None:
        await self.run("kill", *names)

    async def stop(self, *names: str) -> None:
        await self.run("stop", *names)

    async def redis(self, *command: str) -> str:
        """One redis-cli command against our Redis."""
        done = await anyio.run_process(
            ["redis-cli", "-p", str(self.redis_port), *command], check=False
        )
        if done.returncode != 0:
            raise FaultFailed(f"redis-cli {' '.join(command)}: {done.stderr.decode()}")
        return done.stdout.decode().strip()


@dataclass
class Node:
    """One ``chatcore`` process and its log file."""

    name: str
    args: tuple[str, ...]
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def launch(self, env: Mapping[str, str]) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "chatcore.cli", *self.args],
                env=dict(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )

    async def end(self, sig: int = signal.SIGTERM, timeout_s: float = 20.0) -> None:
        """Send ``sig`` and wait for the exit (SIGKILL after ``timeout_s``)."""
        popen = self.popen
        if popen is None or popen.poll() is not None:
            return
        popen.send_signal(sig)
        deadline = time.monotonic() + timeout_s
        while popen.poll() is None:
            if time.monotonic() > deadline:
                popen.kill()
            await anyio.sleep(0.05)


@dataclass
class Stack:
    """``chatcore`` on our services: one ``serve`` process, or a gateway and a worker."""

    services: Services
    workdir: Path
    split: bool = False
    presence_ttl_s: float = 60.0
    heartbeat_s: float = 30.0
    partitions: int = 4
    port: int = field(default_factory=free_port)
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    nodes: dict[str, Node] = field(default_factory=dict)
    authority: TokenAuthority = field(default_factory=lambda: TokenAuthority(SECRET))

    @property
    def store_path(self) -> Path:
        return self.workdir / "store.db"

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            CHATCORE_SECRET=SECRET,
            CHATCORE_KAFKA_BOOTSTRAP=self.services.kafka_bootstrap,
            CHATCORE_REDIS_URL=self.services.redis_url,
            CHATCORE_SQLITE_STORE=str(self.store_path),
            CHATCORE_TOPIC_PREFIX=f"faults-{self.tag}.",
            CHATCORE_REDIS_PREFIX=f"faults:{self.tag}:",
            CHATCORE_PARTITIONS=str(self.partitions),
            CHATCORE_PRESENCE_TTL_S=str(self.presence_ttl_s),
            CHATCORE_HEARTBEAT_S=str(self.heartbeat_s),
        )
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO / "src"), env.get("PYTHONPATH", "")) if p
        )
        return env

    async def start(self) -> None:
        """``chatcore init``, then the processes; raise FaultFailed if one does not come up."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        init = Node("init", ("init",), self.workdir / "init.log")
        init.launch(self.env())
        assert init.popen is not None
        deadline = time.monotonic() + 120
        while init.popen.poll() is None:
            if time.monotonic() > deadline:
                await init.end(signal.SIGKILL)
                raise FaultFailed(f"chatcore init hung:\n{init.output()[-2000:]}")
            await anyio.sleep(0.1)
        if init.popen.returncode != 0:
            raise FaultFailed(f"chatcore init failed:\n{init.output()[-2000:]}")
        port = ("--port", str(self.port), "--log-level", "warning")
        if self.split:
            self.nodes["worker"] = Node(
                "worker", ("worker", "--log-level", "warning"), self._log("worker")
            )
            self.nodes["gateway"] = Node("gateway", ("gateway", *port), self._log("gateway"))
        else:
            self.nodes["gateway"] = Node(
                "serve", ("serve", "--backend", "production", *port), self._log("serve")
            )
        for node in self.nodes.values():
            node.launch(self.env())
        if self.split:
            await self._wait(
                self.nodes["worker"], lambda: "worker running" in self.nodes["worker"].output()
            )
        await self.wait_healthy()

    def _log(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    @property
    def gateway(self) -> Node:
        return self.nodes["gateway"]

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.http}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    async def wait_healthy(self, timeout_s: float = 90.0) -> float:
        """Seconds until the gateway answers /healthz; raise FaultFailed after ``timeout_s``."""
        started = time.monotonic()
        await self._wait(self.gateway, lambda: self.healthy(), timeout_s)
        return time.monotonic() - started

    async def _wait(self, node: Node, ready: object, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not ready():  # type: ignore[operator]
            if not node.running():
                raise FaultFailed(f"{node.name} exited:\n{node.output()[-3000:]}")
            if time.monotonic() > deadline:
                raise FaultFailed(
                    f"{node.name} not ready in {timeout_s} s:\n{node.output()[-3000:]}"
                )
            await anyio.to_thread.run_sync(time.sleep, 0.2)

    async def restart_gateway(self, sig: int = signal.SIGKILL) -> float:
        """End the gateway process with ``sig``, start it again; seconds until healthy."""
        gateway = self.gateway
        await gateway.end(sig)
        gateway.launch(self.env())
        return await self.wait_healthy()

    async def stop(self) -> None:
        with anyio.CancelScope(shield=True):
            for node in reversed(list(self.nodes.values())):
                await node.end()

    def token(self, user: str) -> str:
        return self.authority.issue(user)

    def client(
        self, user: str, *, device: str = "d", options: ClientOptions | None = None, **kw: object
    ) -> ChatClient:
        return ChatClient(
            self.url,
            token=self.token(user),
            device=device,
            options=options,
            **kw,  # type: ignore[arg-type]
        )

    def stored(self) -> list[Row]:
        """Every message in the store (read-only, while the processes may still run)."""
        decode = msgspec.msgpack.Decoder(StoredMessage).decode
        conn = sqlite3.connect(f"file:{self.store_path}?mode=ro", uri=True, timeout=30)
        try:
            rows = conn.execute("SELECT data FROM messages").fetchall()
        finally:
            conn.close()
        out = []
        for (data,) in rows:
            m = decode(data)
            out.append(Row(m.chat_id, m.seq, m.sender, m.client_msg_id, m.message_id))
        return out


@asynccontextmanager
async def running(stack: Stack) -> AsyncIterator[Stack]:
    """Start ``stack``, stop its processes on the way out."""
    try:
        await stack.start()
        yield stack
    finally:
        await stack.stop()
