"""``python -m semlink.serving.probe ADDRESS [SERVICE] [--tls-ca FILE]``: exit 0 if SERVING.

Used by docker-compose healthchecks and Kubernetes exec probes (under TLS, where the kubelet's
native gRPC probes cannot speak: ``--tls-ca`` names the CA that signed the server's
certificate, which must hold the probed address, e.g. IP 127.0.0.1).
"""

from __future__ import annotations

import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def probe(
    address: str, service: str = "", timeout: float = 3.0, tls_ca: Path | None = None
) -> bool:
    ch = (
        grpc.secure_channel(address, grpc.ssl_channel_credentials(tls_ca.read_bytes()))
        if tls_ca is not None
        else grpc.insecure_channel(address)
    )
    with ch:
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
    args = list(sys.argv[1:] if argv is None else argv)
    tls_ca = None
    for arg in [a for a in args if a.startswith("--tls-ca")]:
        args.remove(arg)
        tls_ca = Path(arg.partition("=")[2])
    if not args or tls_ca == Path():
        print(
            "usage: python -m semlink.serving.probe HOST:PORT [SERVICE] [--tls-ca=FILE]",
            file=sys.stderr,
        )
        return 2
    return 0 if probe(args[0], args[1] if len(args) > 1 else "", tls_ca=tls_ca) else 1


if __name__ == "__main__":
    sys.exit(main())
