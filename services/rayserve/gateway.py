"""The gateway of a semlink service on Ray Serve (one replica): semlink's gRPC API (health,
reflection, token, TLS: :func:`semlink.serving.server.start_service`) in front of the
service's host replicas, every call's bytes forwarded through a deployment handle. Its
/metrics holds its own series and every replica's. A replica that dies mid-call turns into
UNAVAILABLE, which fleet clients retry (``semlink.serving.client.RetryPolicy``).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, cast

import grpc
from prometheus_client.metrics_core import Metric
from ray.serve.handle import DeploymentHandle, DeploymentResponseGenerator

from semlink.serving import ServerConfig, ServiceRuntime
from semlink.serving.server import RunningService, start_service
from services.rayserve.metrics import METRICS_PERIOD, FleetMetrics


def status_of_ray_error(exc: BaseException) -> tuple[grpc.StatusCode, str] | None:
    """Ray failures as gRPC statuses: lost replicas are UNAVAILABLE (clients retry)."""
    from ray import exceptions as rex
    from ray.serve.exceptions import BackPressureError

    if isinstance(exc, BackPressureError):
        return grpc.StatusCode.RESOURCE_EXHAUSTED, f"every replica is full: {exc}"
    if isinstance(exc, rex.RayActorError | rex.ActorUnavailableError | rex.ObjectLostError):
        return grpc.StatusCode.UNAVAILABLE, f"a replica was lost mid-call; retry ({exc})"
    if isinstance(exc, TimeoutError | rex.GetTimeoutError):
        return grpc.StatusCode.DEADLINE_EXCEEDED, "the call's deadline passed in the replica"
    return None


class _Forwarder:
    """Generic gRPC handlers that pass request and response bytes through a host handle."""

    runtime: ServiceRuntime  # set by add_servicers, when the server is built

    def __init__(self, host: DeploymentHandle) -> None:
        self.host = host
        self.in_flight = 0

    def _depth(self, delta: int) -> None:
        self.in_flight += delta
        self.runtime.metrics.queue_depth.labels(self.runtime.name).set(self.in_flight)

    async def _fail(self, context: grpc.aio.ServicerContext, exc: BaseException) -> None:
        status = status_of_ray_error(exc)
        if status is None:
            status = grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}"
        await context.abort(*status)

    def unary(self, method: str) -> Callable[[bytes, grpc.aio.ServicerContext], Awaitable[bytes]]:
        async def handle(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            if not self.runtime.ready.is_set():
                await context.abort(grpc.StatusCode.UNAVAILABLE, "no replica is ready yet")
            self._depth(+1)
            response = self.host.call.remote(method, request, context.time_remaining())
            try:
                code, payload = await response
            except asyncio.CancelledError:  # the client went away: so does the replica's work
                response.cancel()
                raise
            except Exception as exc:
                await self._fail(context, exc)
                raise
            finally:
                self._depth(-1)
            if code != "OK":
                await context.abort(grpc.StatusCode[code], str(payload))
            assert isinstance(payload, bytes)
            return payload

        return handle

    def stream(
        self, method: str
    ) -> Callable[[bytes, grpc.aio.ServicerContext], AsyncIterator[bytes]]:
        async def handle(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
            if not self.runtime.ready.is_set():
                await context.abort(grpc.StatusCode.UNAVAILABLE, "no replica is ready yet")
            self._depth(+1)
            try:
                replies = cast(
                    DeploymentResponseGenerator,
                    self.host.options(stream=True).stream.remote(
                        method, request, context.time_remaining()
                    ),
                )
                async for code, payload in replies:
                    if code != "OK":
                        await context.abort(grpc.StatusCode[code], str(payload))
                    assert isinstance(payload, bytes)
                    yield payload
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await self._fail(context, exc)
            finally:
                self._depth(-1)

        return handle

    def add_servicers(self, methods: dict[str, str]) -> Callable[..., Sequence[str]]:
        def add(server: grpc.aio.Server, runtime: ServiceRuntime) -> Sequence[str]:
            self.runtime = runtime
            by_service: dict[str, dict[str, grpc.RpcMethodHandler]] = {}
            for path, kind in methods.items():
                _, service, name = path.split("/")
                by_service.setdefault(service, {})[name] = (
                    grpc.unary_unary_rpc_method_handler(self.unary(path))
                    if kind == "unary"
                    else grpc.unary_stream_rpc_method_handler(self.stream(path))
                )
            server.add_generic_rpc_handlers(
                [grpc.method_handlers_generic_handler(s, h) for s, h in by_service.items()]
            )
            return sorted(by_service)

        return add


class Gateway:
    """semlink's gRPC API for one service, in front of its host replicas."""

    async def __init__(  # type: ignore[misc]  # Ray Serve awaits async constructors
        self,
        service: str,
        host: DeploymentHandle,
        server: dict[str, Any],
        token_env: str | None = None,
    ) -> None:
        self.service = service
        server = dict(server)
        if token_env:  # the bearer token from the replica's environment (a Secret)
            token = os.environ.get(token_env, "").strip()
            if not token:
                raise RuntimeError(f"environment variable {token_env} is empty or unset")
            server["token"] = token
        self.config = ServerConfig.model_validate(server)
        methods: dict[str, str] = await host.methods.remote()
        forwarder = _Forwarder(host)
        self.running: RunningService | None = None
        self.fleet: FleetMetrics | None = None
        self._metrics_http: tuple[Any, threading.Thread] | None = None
        # /metrics is served below, with the replicas' series merged in.
        own = self.config.model_copy(update={"metrics_port": None})
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        errors: list[BaseException] = []

        async def ready() -> None:
            # The first host replica answered `methods` above: calls can flow.
            return None

        def main() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self.running = self._loop.run_until_complete(
                    start_service(service, own, forwarder.add_servicers(methods), ready)
                )
            except BaseException as exc:
                errors.append(exc)
                started.set()
                return
            started.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=main, name=f"semlink-{service}-grpc", daemon=True)
        self._thread.start()
        started.wait(60)
        if errors:
            raise errors[0]
        assert self.running is not None
        if self.config.metrics_port is not None:
            self.fleet = FleetMetrics(
                self.running.runtime.metrics.registry, stale_after=5 * METRICS_PERIOD + 5
            )
            self._metrics_http = self.fleet.serve(self.config.metrics_port, self.config.host)

    def address(self) -> tuple[int, int | None]:
        """(gRPC port, metrics port) the gateway listens on (ports 0 pick free ones)."""
        assert self.running is not None
        metrics_port = None if self._metrics_http is None else self._metrics_http[0].server_port
        return self.running.port, metrics_port

    def replica_metrics(self, replica: str, families: list[Metric]) -> None:
        """A host replica's metric families, served on /metrics with ``replica="<id>"``."""
        if self.fleet is not None:
            self.fleet.update(replica, families)

    def check_health(self) -> None:
        if not self._thread.is_alive():
            raise RuntimeError("the gRPC server thread stopped")

    def __del__(self) -> None:
        if self._metrics_http is not None:
            http, thread = self._metrics_http
            http.shutdown()
            thread.join(timeout=5)
        running = self.running
        if running is None or not self._loop.is_running():
            return
        future = asyncio.run_coroutine_threadsafe(
            running.stop(self.config.grace_seconds), self._loop
        )
        try:
            future.result(self.config.grace_seconds + 5)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
