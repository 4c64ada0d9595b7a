"""Real gRPC servers on localhost ports for tests: each runs its own event loop in a thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import grpc

from semlink.serving import ServerConfig, ServiceRuntime
from semlink.serving.server import RunningService, start_service


@dataclass
class ServiceThread:
    name: str
    config: ServerConfig
    add_servicers: Callable[[grpc.aio.Server, ServiceRuntime], Sequence[str]]
    load: Callable[[], Awaitable[None]]
    running: RunningService | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _started: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> ServiceThread:
        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self.running = loop.run_until_complete(
                start_service(self.name, self.config, self.add_servicers, self.load)
            )
            self._started.set()
            loop.run_forever()

        self._thread = threading.Thread(target=main, daemon=True)
        self._thread.start()
        self._started.wait(30)
        return self

    @property
    def address(self) -> str:
        assert self.running is not None
        return f"127.0.0.1:{self.running.port}"

    @property
    def metrics_url(self) -> str:
        assert self.running is not None
        return f"http://127.0.0.1:{self.running.metrics_port}/metrics"

    def stop(self, grace: float | None = 1.0) -> None:
        assert self._loop is not None and self.running is not None
        future = asyncio.run_coroutine_threadsafe(self.running.stop(grace), self._loop)
        future.result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None
        self._thread.join(10)


def config(**overrides: object) -> ServerConfig:
    base: dict[str, object] = {"port": 0, "metrics_port": 0, "workers": 2, "max_waiting": 8}
    base.update(overrides)
    return ServerConfig(**base)  # type: ignore[arg-type]
