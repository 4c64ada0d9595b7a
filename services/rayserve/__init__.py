"""semlink on Ray Serve: each service's own servicer in replicas, its gRPC API in a gateway.

``semlink serve decoder --engine ray`` or ``serve deploy deploy/ray/serve-config.yaml``.
"""
