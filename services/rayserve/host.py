"""A Ray Serve host replica of a semlink service: the service's own servicer and models
(``add_servicers`` and ``load`` from services/<name>/server.py, unchanged: the same parsing,
decoding, error mapping and metrics as a plain server), called with serialized requests.

With ``max_batch_size`` > 1, the methods the service can batch (the decoder's Decode:
lite's restorer runs once per batch) gather concurrent calls with ``@serve.batch``. Each
replica pushes its metrics to the gateway every :data:`~services.rayserve.metrics.
METRICS_PERIOD` seconds.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, cast

import grpc
from ray import serve

from semlink.obs import ServiceMetrics
from semlink.serving import ServiceRuntime, WorkQueue
from semlink.serving.server import BatchHandler, RpcFailure
from services.rayserve.metrics import METRICS_PERIOD
from services.rayserve.parts import hosted_service


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
