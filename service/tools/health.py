"""`nextword health`: exit 0 if the server's gRPC health check says SERVING (for HEALTHCHECK)."""
from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service import settings
from service.client import ClientError


def add_arguments(p) -> None:
    p.add_argument("--address", default=None, help="server address host:port (default: localhost and the configured gRPC port)")
    p.add_argument("--timeout", type=float, default=2.0, help="deadline in seconds")


def main(args) -> int:
    args.address = args.address or f"localhost:{settings.from_args().grpc_port}"  # NEXTWORD_GRPC_PORT applies
    with grpc.insecure_channel(args.address) as channel:
        try:
            status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=args.timeout).status
        except grpc.RpcError as e:
            raise ClientError(f"{args.address}: {e.code().name}") from None
    name = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
    print(name)
    return 0 if status == health_pb2.HealthCheckResponse.SERVING else 1
