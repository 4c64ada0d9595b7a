"""Lifecycle of a semlink gRPC service: build, load, serve, drain.

* health starts NOT_SERVING and turns SERVING only after the models are loaded;
  RPCs before that get UNAVAILABLE;
* server reflection, so grpcurl works;
* explicit max message sizes; optional TLS / mTLS; optional bearer token;
* Prometheus /metrics on its own HTTP port;
* SIGTERM: health NOT_SERVING, stop accepting, finish in-flight calls (grace period).
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server
from pydantic import BaseModel, Field

from semlink import calls
from semlink.calls import CallScope, DeadlineExceeded, Stopped
from semlink.obs import ServiceMetrics
from semlink.serving.errors import message_of, status_for
from semlink.serving.interceptors import MetricsInterceptor, TokenAuthInterceptor
from semlink.serving.memory import DEFAULT_MEMORY_BUDGET, MemoryBudget, MemoryModel, OverBudget
from semlink.serving.queue import Overloaded, WorkQueue

MiB = 1024 * 1024
T = TypeVar("T")


class ServerConfig(BaseModel):
    """Settings of one service process (CLI flags map onto these)."""

    host: str = "127.0.0.1"
    port: int = Field(50051, ge=0, le=65535, description="gRPC port (0 = pick a free one).")
    metrics_port: int | None = Field(
        9100, ge=0, le=65535, description="Prometheus port; None = off."
    )
    workers: int = Field(2, ge=1, description="Requests computed at once.")
    max_waiting: int = Field(
        8, ge=0, description="Requests allowed to wait; more get RESOURCE_EXHAUSTED."
    )
    max_message_bytes: int = Field(32 * MiB, ge=MiB)
    grace_seconds: float = Field(
        30.0, ge=0, description="How long SIGTERM waits for in-flight calls."
    )
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = Field(
        None, description="Set to require client certificates (mTLS)."
    )
    token: str | None = Field(None, description="Require 'authorization: Bearer <token>'.")
    memory_budget: int | None = Field(
        DEFAULT_MEMORY_BUDGET,
        gt=0,
        description="Bytes the requests in flight may hold together (None: no limit); "
        "each reserves its picture's estimate (semlink.serving.memory) before it runs.",
    )


@dataclass(frozen=True)
class RpcFailure:
    """How one call of a batch ends when it does not succeed: a status and its message."""

    code: grpc.StatusCode
    details: str


BatchHandler = Callable[[Sequence[tuple[Any, float | None]]], Awaitable[Sequence[Any]]]
"""Several calls of one method at once: (request message, seconds left to its deadline)
each -> its response message or :class:`RpcFailure`, in order."""


def failure_of(exc: BaseException) -> RpcFailure:
    """The status and message a failure of a call's work maps to (INTERNAL if unexpected)."""
    if isinstance(exc, (Overloaded, OverBudget)):
        return RpcFailure(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
    if isinstance(exc, DeadlineExceeded):
        return RpcFailure(grpc.StatusCode.DEADLINE_EXCEEDED, str(exc))
    if isinstance(exc, Stopped):  # the client cancelled (it no longer reads the answer)
        return RpcFailure(grpc.StatusCode.CANCELLED, str(exc))
    code = status_for(exc)
    if code is None:
        return RpcFailure(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}")
    return RpcFailure(code, message_of(exc))


@dataclass(frozen=True)
class Admission:
    """What a call's picture costs: its memory model, its size (width, height; None:
    unknown before the work reads it, then the work's own limits apply) and the verb the
    refusal uses ("encode", "decode")."""

    model: MemoryModel
    size: tuple[int, int] | None
    what: str


@dataclass
class ServiceRuntime:
    """What a servicer needs from its server: metrics, the work queue, readiness."""

    name: str
    metrics: ServiceMetrics
    queue: WorkQueue
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    max_message_bytes: int | None = None
    """The largest message the server sends (None: no limit of its own): answers that
    would be larger are refused before the work that makes them."""
    memory: MemoryBudget | None = None
    """Admission by memory (None: none)."""

    async def run(
        self,
        context: grpc.aio.ServicerContext,
        work: Callable[[Callable[[], None]], object],
        memory: Admission | None = None,
    ) -> tuple[object, float]:
        """Run ``work(check)`` on the queue, mapping every failure to a status with a message.

        The work runs under the call's :class:`~semlink.calls.CallScope`: when the
        deadline passes or the client cancels, the subprocesses it started are killed at
        once and ``check()`` (and :func:`semlink.calls.check` anywhere below) raises
        :class:`~semlink.calls.DeadlineExceeded` / :class:`~semlink.calls.CallCancelled`;
        work calls it between stages. ``memory``: what the work's picture reserves from the
        service's memory budget before it starts (RESOURCE_EXHAUSTED when it never fits).
        """
        if not self.ready.is_set():
            await context.abort(grpc.StatusCode.UNAVAILABLE, self._loading())
        need = 0
        if memory is not None and memory.size is not None and self.memory is not None:
            try:
                need = self.memory.check(memory.model, *memory.size, memory.what)
            except OverBudget as exc:
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
            await self.memory.acquire(need)
        scope = CallScope(context.time_remaining())

        def job() -> object:
            with calls.running(scope):
                return work(scope.check)

        try:
            result, waited = await self.queue.run(job)
        except asyncio.CancelledError:  # the client cancelled or its deadline passed
            scope.cancel_call()
            raise
        except Exception as exc:
            failure = failure_of(exc)
            await context.abort(failure.code, failure.details)
        finally:
            scope.close()
            if need and self.memory is not None:
                await self.memory.release(need)
        self.metrics.queue_seconds.labels(self.name).observe(waited)
        return result, waited

    async def run_batch(
        self,
        timeouts: Sequence[float | None],
        work: Callable[[Sequence[Callable[[], None]]], Sequence[T | Exception]],
    ) -> tuple[list[T | RpcFailure], float]:
        """Run ``work(checks)`` for several calls as one piece of work on the queue: one
        ``check`` per call (its own deadline, ``timeouts`` seconds from now), one result or
        exception per call back. Each exception becomes that call's :class:`RpcFailure`;
        a failure of the whole (not ready, overloaded) becomes every call's."""
        if not self.ready.is_set():
            loading = RpcFailure(grpc.StatusCode.UNAVAILABLE, self._loading())
            return [loading for _ in timeouts], 0.0
        scopes = [CallScope(timeout) for timeout in timeouts]
        try:
            results, waited = await self.queue.run(lambda: work([s.check for s in scopes]))
        except asyncio.CancelledError:
            for scope in scopes:
                scope.cancel_call()
            raise
        except Exception as exc:
            failure = failure_of(exc)
            return [failure for _ in timeouts], 0.0
        finally:
            for scope in scopes:
                scope.close()
        for _ in timeouts:
            self.metrics.queue_seconds.labels(self.name).observe(waited)
        return [failure_of(r) if isinstance(r, Exception) else r for r in results], waited

    def _loading(self) -> str:
        return f"{self.name} is still loading its models; retry when health reports SERVING"


@dataclass
class RunningService:
    server: grpc.aio.Server
    runtime: ServiceRuntime
    health: health.aio.HealthServicer
    port: int
    metrics_port: int | None
    service_names: Sequence[str]
    loading: asyncio.Task[None] | None = None
    metrics_http: tuple[Any, threading.Thread] | None = None

    async def stop(self, grace: float | None) -> None:
        """Stop taking calls, let in-flight ones finish within ``grace`` seconds."""
        for name in (*self.service_names, ""):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.server.stop(grace)
        self.runtime.queue.shutdown()
        if self.metrics_http is not None:
            http, thread = self.metrics_http
            http.shutdown()
            thread.join(timeout=5)


def _credentials(config: ServerConfig) -> grpc.ServerCredentials | None:
    if config.tls_cert is None and config.tls_key is None:
        return None
    if config.tls_cert is None or config.tls_key is None:
        raise ValueError("TLS needs both tls_cert and tls_key")
    client_ca = config.tls_client_ca.read_bytes() if config.tls_client_ca else None
    return grpc.ssl_server_credentials(
        [(config.tls_key.read_bytes(), config.tls_cert.read_bytes())],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


async def start_service(
    name: str,
    config: ServerConfig,
    add_servicers: Callable[[grpc.aio.Server, ServiceRuntime], Sequence[str]],
    load: Callable[[], Awaitable[None]],
) -> RunningService:
    """Start serving at once (health NOT_SERVING), load models in the background, then SERVING."""
    metrics = ServiceMetrics(name)
    runtime = ServiceRuntime(
        name,
        metrics,
        WorkQueue(config.workers, config.max_waiting, metrics.queue_depth.labels(name).set),
        max_message_bytes=config.max_message_bytes,
        memory=None if config.memory_budget is None else MemoryBudget(config.memory_budget),
    )
    interceptors: list[grpc.aio.ServerInterceptor] = [MetricsInterceptor(metrics)]
    if config.token:
        interceptors.append(TokenAuthInterceptor(config.token))
    options = [
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.max_send_message_length", config.max_message_bytes),
    ]
    server = grpc.aio.server(interceptors=interceptors, options=options)
    service_names = list(add_servicers(server, runtime))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for service in (*service_names, ""):
        await health_servicer.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
    reflection.enable_server_reflection(
        (
            *service_names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    address = f"{config.host}:{config.port}"
    credentials = _credentials(config)
    port = (
        server.add_secure_port(address, credentials)
        if credentials
        else server.add_insecure_port(address)
    )
    metrics_server = None
    metrics_port = None
    if config.metrics_port is not None:
        metrics_server = start_http_server(
            config.metrics_port, addr=config.host, registry=metrics.registry
        )
        metrics_port = metrics_server[0].server_port
    await server.start()
    running = RunningService(
        server,
        runtime,
        health_servicer,
        port,
        metrics_port,
        service_names,
        metrics_http=metrics_server,
    )

    async def load_then_serve() -> None:
        await load()
        runtime.ready.set()
        for service in (*service_names, ""):
            await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)

    running.loading = asyncio.create_task(load_then_serve())
    return running


def run_service(
    name: str,
    config: ServerConfig,
    add_servicers: Callable[[grpc.aio.Server, ServiceRuntime], Sequence[str]],
    load: Callable[[], Awaitable[None]],
    on_started: Callable[[RunningService], None] | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT, then drain gracefully."""

    async def main() -> None:
        running = await start_service(name, config, add_servicers, load)
        if on_started:
            on_started(running)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await running.stop(config.grace_seconds)

    asyncio.run(main())
