"""Where a semlink service's servicer and model loading come from (no Ray import here)."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import NamedTuple

import grpc

from semlink.serving import ServiceRuntime
from semlink.serving.server import BatchHandler

AddServicers = Callable[[grpc.aio.Server, ServiceRuntime], Sequence[str]]
Loader = Callable[[], Awaitable[None]]
SERVICES = ("encoder", "decoder")


class HostedService(NamedTuple):
    """What a replica runs of a service."""

    add_servicers: AddServicers
    load: Loader
    batch_handlers: Callable[[], Mapping[str, BatchHandler]]
    """Method path -> the handler of several calls at once (after ``add_servicers``)."""


def hosted_service(service: str) -> HostedService:
    """The service's own ``add_servicers``, ``load`` and batch handlers, built where they
    run (a replica).

    A deployable class (``DecoderService``/``EncoderService``: its models resolver built
    from the settings at start-up) when services/<name>/server.py has one, else that
    module's functions (no batch handlers).
    """
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}: Ray serves {', '.join(SERVICES)}")
    module = importlib.import_module(f"services.{service}.server")
    deployable = getattr(module, f"{service.capitalize()}Service", None)
    if deployable is not None:
        instance = deployable()
        batch_handlers = getattr(instance, "batch_handlers", dict)
        return HostedService(instance.add_servicers, instance.load, batch_handlers)
    return HostedService(module.add_servicers, module.load, dict)


def service_parts(service: str) -> tuple[AddServicers, Loader]:
    """The service's own ``add_servicers`` and ``load`` (see :func:`hosted_service`)."""
    hosted = hosted_service(service)
    return hosted.add_servicers, hosted.load
