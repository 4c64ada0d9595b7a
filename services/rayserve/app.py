"""Ray Serve deployments of the semlink services.

Two deployments per service application, one module each:

* ``ServiceHost`` replicas (:mod:`services.rayserve.host`) run the service's own servicer
  (``add_servicers``) and model loading (``load``) from services/<name>/server.py,
  unchanged: the same parsing, decoding, error mapping and metrics as a plain server.
  Replicas take CPUs or GPUs (``ray_actor_options``) and autoscale on ongoing requests
  (``autoscaling_config``). With ``max_batch_size`` > 1, the methods the service can batch
  (the decoder's Decode: lite's restorer runs once per batch) gather concurrent calls with
  ``@serve.batch``. Each replica pushes its metrics to the gateway every second
  (services/rayserve/metrics.py).
* ``Gateway`` (one replica, :mod:`services.rayserve.gateway`) serves semlink's gRPC API
  (health, reflection, token, TLS: :func:`semlink.serving.server.start_service`) and
  forwards every call's bytes to a host replica through a deployment handle; its /metrics
  holds its own and every replica's series. A replica that dies mid-call turns into
  UNAVAILABLE, which fleet clients retry (``semlink.serving.client.RetryPolicy``).

``build_app`` (here) is the import path of a Serve config file (deploy/ray/serve-config.yaml).
"""

from __future__ import annotations

from typing import Any

from ray import serve

from services.rayserve.gateway import Gateway, status_of_ray_error
from services.rayserve.host import ServiceHost
from services.rayserve.parts import SERVICES


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


__all__ = ["Gateway", "ServiceHost", "build_app", "status_of_ray_error"]
