"""Ray Serve deployments of the semlink services.

Two deployments per service application:

* ``ServiceHost`` replicas run the service's own servicer (``add_servicers``) and model
  loading (``load``) from services/<name>/server.py, unchanged: the same parsing, decoding,
  error mapping and metrics as a plain server. Replicas take CPUs or GPUs
  (``ray_actor_options``) and autoscale on ongoing requests (``autoscaling_config``).
  With ``max_batch_size`` > 1, the methods the service can batch (the decoder's Decode:
  lite's restorer runs once per batch) gather concurrent calls with ``@serve.batch``.
  Each replica pushes its metrics to the gateway every second (services/rayserve/metrics.py).
* ``Gateway`` (one replica) serves semlink's gRPC API (health, reflection, token, TLS:
  :func:`semlink.serving.server.start_service`) and forwards every call's bytes to a host
  replica through a deployment handle; its /metrics holds its own and every replica's
  series. A replica that dies mid-call turns into UNAVAILABLE, which fleet clients retry
  (``semlink.serving.client.RetryPolicy``).

``build_app`` is the import path of a Serve config file (deploy/ray/serve-config.yaml).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, cast

import grpc
from prometheus_client.metrics_core import Metric
from ray import serve
from ray.serve.handle import DeploymentHandle, DeploymentResponseGenerator

from semlink.obs import ServiceMetrics
from semlink.serving import ServerConfig, ServiceRuntime, WorkQueue
from semlink.serving.server import BatchHandler, RpcFailure, RunningService, start_service
from services.rayserve.metrics import FleetMetrics
from services.rayserve.parts import SERVICES, hosted_service


class _Capture:
    """Stands in for a grpc.aio.Server to collect the method handlers a servicer registers."""

    def __init__(self) -> None:
        self.handlers: dict[str, grpc.RpcMethodHandler] = {}

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        for method, handler in handlers.items():
            self.handlers[f"/{service}/{method}"] = handler

    def add_generic_rpc_handlers(self, generic_handlers: Sequence[Any]) -> None:
        for generic in generic_handlers:
            service = generic.service_name()
            for method, handler in getattr(generic, "_method_handlers", {}).items():
                path = method if method.startswith("/") else f"/{service}/{method}"
                self.handlers.setdefault(path, handler)


class Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(code, details)
        self.code = code
        self.details = details


class _Context:
    """What the servicers use of a grpc.aio.ServicerContext: the deadline and abort."""

    def __init__(self, timeout: float | None) -> None:
        self._deadline = None if timeout is None else time.monotonic() + timeout

    def time_remaining(self) -> float | None:
        return None if self._deadline is None else max(0.0, self._deadline - time.monotonic())

    async def abort(self, code: grpc.StatusCode, details: str = "") -> None:
        raise Aborted(code, details)

    def invocation_metadata(self) -> tuple[()]:
        return ()


# (status code name, serialized response or error details)
Reply = tuple[str, bytes | str]


METRICS_PERIOD = 1.0
"""Seconds between two pushes of a replica's metrics to its gateway."""

Batched = Callable[[bytes, float | None], Awaitable[Reply]]


class ServiceHost:
    """One replica: the service's servicer and models, called with serialized requests."""

    async def __init__(  # type: ignore[misc]  # Ray Serve awaits async constructors
        self,
        service: str,
        workers: int = 1,
        max_waiting: int = 64,
        max_batch_size: int = 1,
        batch_wait_timeout_s: float = 0.01,
        gateway: str | None = None,
    ) -> None:
        hosted = hosted_service(service)
        self.service = service
        metrics = ServiceMetrics(service)
        self.runtime = ServiceRuntime(
            service,
            metrics,
            WorkQueue(workers, max_waiting, metrics.queue_depth.labels(service).set),
        )
        capture = _Capture()
        hosted.add_servicers(cast(grpc.aio.Server, capture), self.runtime)
        self.handlers = capture.handlers
        self.batched: dict[str, Batched] = {}
        if max_batch_size > 1:
            for path, handler in hosted.batch_handlers().items():
                self.batched[path] = self._batcher(
                    path, handler, max_batch_size, batch_wait_timeout_s, workers
                )
        await hosted.load()
        self.runtime.ready.set()
        self._pushing = (
            None if gateway is None else asyncio.create_task(self._push_metrics(gateway))
        )

    def _batcher(
        self, path: str, handler: BatchHandler, size: int, wait_s: float, batches: int
    ) -> Batched:
        """``handler`` behind ``@serve.batch``: concurrent calls of ``path`` on this replica
        are gathered (up to ``size``, waiting at most ``wait_s`` for more), ``batches``
        batches at once (the replica's workers). Each call gets its own reply."""
        method = self.handlers[path]

        async def run_batch(requests: list[bytes], timeouts: list[float | None]) -> list[Reply]:
            replies: list[Reply | None] = [None] * len(requests)
            calls: list[tuple[Any, float | None]] = []
            parsed: list[int] = []
            for index, (request, timeout) in enumerate(zip(requests, timeouts, strict=True)):
                try:
                    calls.append((method.request_deserializer(request), timeout))
                    parsed.append(index)
                except Exception as exc:  # bytes that are no request of this method
                    replies[index] = ("INVALID_ARGUMENT", f"unreadable request: {exc}")
            outcomes = await handler(calls) if calls else []
            for index, outcome in zip(parsed, outcomes, strict=True):
                replies[index] = (
                    (outcome.code.name, outcome.details)
                    if isinstance(outcome, RpcFailure)
                    else ("OK", method.response_serializer(outcome))
                )
            return [reply for reply in replies if reply is not None]

        batched = serve.batch(
            max_batch_size=size, batch_wait_timeout_s=wait_s, max_concurrent_batches=batches
        )(run_batch)
        return cast(Batched, batched)

    async def _push_metrics(self, gateway: str) -> None:
        """Send this replica's metric families to the gateway's /metrics, every
        :data:`METRICS_PERIOD` seconds (the gateway may not be up yet: try again later)."""
        context = serve.get_replica_context()
        replica = context.replica_id.unique_id
        handle = serve.get_deployment_handle(gateway, app_name=context.app_name)
        while True:
            try:
                families = list(self.runtime.metrics.registry.collect())
                await asyncio.wait_for(
                    handle.replica_metrics.remote(replica, families), 10 * METRICS_PERIOD
                )
            except Exception:  # the next push carries the same (cumulative) data
                pass
            await asyncio.sleep(METRICS_PERIOD)

    def pid(self) -> int:
        """This replica's process id (tests and benches tell replicas apart with it)."""
        return os.getpid()

    def actor_name(self) -> str:
        """This replica's Ray actor name (in the "serve" namespace)."""
        import ray

        return str(ray.get_runtime_context().get_actor_name())

    def methods(self) -> dict[str, str]:
        """Method path -> "unary" or "stream" (what the gateway forwards)."""
        return {
            path: "unary" if handler.unary_unary else "stream"
            for path, handler in self.handlers.items()
            if handler.unary_unary or handler.unary_stream
        }

    async def call(self, method: str, request: bytes, timeout: float | None = None) -> Reply:
        batched = self.batched.get(method)
        if batched is not None:
            return await batched(request, timeout)
        handler = self.handlers[method]
        assert handler.unary_unary is not None
        try:
            response = await handler.unary_unary(
                handler.request_deserializer(request), _Context(timeout)
            )
        except Aborted as exc:
            return exc.code.name, exc.details
        return "OK", handler.response_serializer(response)

    async def stream(
        self, method: str, request: bytes, timeout: float | None = None
    ) -> AsyncIterator[Reply]:
        handler = self.handlers[method]
        assert handler.unary_stream is not None
        try:
            async for response in handler.unary_stream(
                handler.request_deserializer(request), _Context(timeout)
            ):
                yield "OK", handler.response_serializer(response)
        except Aborted as exc:
            yield exc.code.name, exc.details


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


def build_app(args: dict[str, Any]) -> serve.Application:
    """The Serve application of one service (Serve config ``import_path`` target).

    ARGS: ``service`` (encoder|decoder), ``server`` (ServerConfig fields: host, port,
    metrics_port, token, tls_*), ``replicas`` (fixed count) or ``min_replicas`` /
    ``max_replicas`` / ``target_ongoing_requests`` (autoscaling), ``num_cpus``, ``num_gpus``
    per replica, ``workers`` per replica, ``max_ongoing_requests`` per replica,
    ``token_env`` (environment variable of the gateway holding the bearer token),
    ``gateway_resources`` (Ray resources pinning the gateway, e.g. to the head node),
    ``replica_env`` (environment variables set in each replica, e.g. ``SEMLINK_*`` settings),
    ``max_batch_size`` (Decode calls a replica computes together; 1, the default, is no
    batching; ``max_ongoing_requests`` is raised to ``max_batch_size`` x ``workers`` if
    lower, or a batch could never fill) and ``batch_wait_timeout_s`` (how long a batch that
    is not full waits for more calls, default 0.01).
    """
    service = str(args.get("service", "decoder"))
    if service not in SERVICES:  # fail here, not in every replica
        raise ValueError(f"unknown service {service!r}: Ray serves {', '.join(SERVICES)}")
    workers = int(args.get("workers", 1))
    max_batch_size = int(args.get("max_batch_size", 1))
    batch_wait_timeout_s = float(args.get("batch_wait_timeout_s", 0.01))
    if max_batch_size < 1 or batch_wait_timeout_s < 0:
        raise ValueError("max_batch_size must be at least 1, batch_wait_timeout_s at least 0")
    max_ongoing = max(
        int(args.get("max_ongoing_requests", 2 * workers + 2)), max_batch_size * workers
    )
    host_options: dict[str, Any] = {
        "name": f"{service}-host",
        "max_ongoing_requests": max_ongoing,
        "max_queued_requests": int(args.get("max_queued_requests", 64)),
        "ray_actor_options": {
            "num_cpus": float(args.get("num_cpus", 1.0)),
            "num_gpus": float(args.get("num_gpus", 0.0)),
        },
        "health_check_period_s": 2,
        "graceful_shutdown_timeout_s": float(args.get("grace_seconds", 30.0)),
    }
    if args.get("replica_env"):
        env = {str(name): str(value) for name, value in dict(args["replica_env"]).items()}
        host_options["ray_actor_options"]["runtime_env"] = {"env_vars": env}
    if "min_replicas" in args or "max_replicas" in args:
        host_options["autoscaling_config"] = {
            "min_replicas": int(args.get("min_replicas", 1)),
            "max_replicas": int(args.get("max_replicas", 4)),
            "target_ongoing_requests": float(args.get("target_ongoing_requests", workers + 1)),
            "upscale_delay_s": 5,
            "downscale_delay_s": 60,
        }
    else:
        host_options["num_replicas"] = int(args.get("replicas", 1))
    host = serve.deployment(**host_options)(ServiceHost)
    gateway_actor: dict[str, Any] = {"num_cpus": float(args.get("gateway_num_cpus", 0.0))}
    if args.get("gateway_resources"):
        gateway_actor["resources"] = dict(args["gateway_resources"])
    gateway = serve.deployment(
        name=f"{service}-gateway",
        num_replicas=1,
        # Calls are forwarded, not computed: many may be in flight at once.
        max_ongoing_requests=1000,
        ray_actor_options=gateway_actor,
    )(Gateway)
    server = dict(args.get("server", {}))
    token_env = args.get("token_env")
    hosts = host.bind(
        service, workers, max_ongoing, max_batch_size, batch_wait_timeout_s, f"{service}-gateway"
    )
    return gateway.bind(service, hosts, server, token_env)
