"""``python -m semlink.serving.probe ADDRESS``: exit 0 if the gRPC health service says SERVING.

Used by docker-compose healthchecks and Kubernetes exec probes.
"""

from __future__ import annotations

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def probe(address: str, service: str = "", timeout: float = 3.0) -> bool:
    with grpc.insecure_channel(address) as ch:
        try:
            response = health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.RpcError as err:
            print(f"{address}: {err.code().name} {err.details()}", file=sys.stderr)
            return False
    ok = response.status == health_pb2.HealthCheckResponse.SERVING
    print(f"{address}: {health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)}")
    return ok


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m semlink.serving.probe HOST:PORT [SERVICE]", file=sys.stderr)
        return 2
    return 0 if probe(args[0], args[1] if len(args) > 1 else "") else 1


if __name__ == "__main__":
    sys.exit(main())
