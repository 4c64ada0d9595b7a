"""The semlink gRPC services: thin servicers over the ``semlink`` library."""
