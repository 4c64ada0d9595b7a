"""``semlink serve encoder|decoder --engine ray``: deploy the service on Ray Serve and hold it.

Joins the Ray cluster at ``ray_address`` (``auto``, ``host:6379``; None starts a local
one), deploys :func:`services.rayserve.app.build_app` as the application named after the
service, serves semlink's gRPC API from its gateway, and deletes the application on
SIGTERM or SIGINT.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from semlink.serving import ServerConfig


def app_args(
    service: str,
    config: ServerConfig,
    *,
    replicas: int = 1,
    max_replicas: int | None = None,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    max_decode_pixels: int | None = None,
    max_batch_size: int = 1,
    batch_wait_timeout_s: float = 0.01,
) -> dict[str, Any]:
    """``build_app``'s arguments from the serve command's options (``max_decode_pixels``
    reaches the replicas' settings through their environment)."""
    args: dict[str, Any] = {
        "service": service,
        "server": config.model_dump(mode="json"),
        "workers": config.workers,
        "max_ongoing_requests": config.workers + config.max_waiting,
        "num_cpus": num_cpus,
        "num_gpus": num_gpus,
        "grace_seconds": config.grace_seconds,
        "max_batch_size": max_batch_size,
        "batch_wait_timeout_s": batch_wait_timeout_s,
    }
    if max_decode_pixels is not None:
        args["replica_env"] = {"SEMLINK_MAX_DECODE_PIXELS": str(max_decode_pixels)}
    if max_replicas is not None and max_replicas > replicas:
        args.update(
            min_replicas=replicas,
            max_replicas=max_replicas,
            target_ongoing_requests=config.workers + 1,
        )
    else:
        args["replicas"] = replicas
    return args


def main(service: str, config: ServerConfig, ray_address: str | None, **options: Any) -> None:
    import ray
    from ray import serve
    from ray.serve.config import ProxyLocation

    from services.rayserve.app import build_app

    # Handlers first: a SIGTERM while deploying still cleans up (never orphans the cluster).
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    ray.init(address=ray_address, include_dashboard=False if ray_address is None else None)
    try:
        # Calls reach the gateway's gRPC port, never Ray Serve's HTTP proxy.
        serve.start(proxy_location=ProxyLocation.Disabled)
        app = build_app(app_args(service, config, **options))
        serve.run(app, name=service, route_prefix=None)
        stop.wait()
        serve.delete(service)
    finally:
        if ray_address is None:  # the local cluster this command started goes with it
            serve.shutdown()
        ray.shutdown()
