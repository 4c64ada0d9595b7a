"""Where a semlink service's servicer and model loading come from (no Ray import here)."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Sequence

import grpc

from semlink.serving import ServiceRuntime

AddServicers = Callable[[grpc.aio.Server, ServiceRuntime], Sequence[str]]
Loader = Callable[[], Awaitable[None]]
SERVICES = ("encoder", "decoder")


def service_parts(service: str) -> tuple[AddServicers, Loader]:
    """The service's own ``add_servicers`` and ``load``, built where they run (a replica).

    A deployable class (``DecoderService``/``EncoderService``: its models resolver built
    from the settings at start-up) when services/<name>/server.py has one, else that
    module's functions.
    """
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}: Ray serves {', '.join(SERVICES)}")
    module = importlib.import_module(f"services.{service}.server")
    deployable = getattr(module, f"{service.capitalize()}Service", None)
    if deployable is not None:
        instance = deployable()
        return instance.add_servicers, instance.load
    return module.add_servicers, module.load
