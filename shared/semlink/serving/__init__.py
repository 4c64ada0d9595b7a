"""What every semlink gRPC service shares: lifecycle, queue, interceptors, error mapping."""

from semlink.serving.errors import status_for
from semlink.serving.queue import Overloaded, WorkQueue
from semlink.serving.server import ServerConfig, ServiceRuntime, run_service

__all__ = ["Overloaded", "ServerConfig", "ServiceRuntime", "WorkQueue", "run_service", "status_for"]
