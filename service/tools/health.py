"""`nextword health`: exit 0 if the server's gRPC health check says SERVING (for HEALTHCHECK)."""
from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.client import ClientError
from service.client.common import make_channel
from service.client.connect import add_address_flags, connection, first_contact


def add_arguments(p) -> None:
    add_address_flags(p, timeout=2.0)


def main(args) -> int:
    conn = connection(args)
    address = conn.address
    with make_channel(grpc, address, 0, conn.tls, conn.root_certificates, conn.certificate_chain, conn.private_key) as channel:
        try:
            status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=args.timeout).status
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.UNAVAILABLE:
                first_contact(conn)  # says what is wrong, where it can tell
            raise ClientError(f"{address}: {e.code().name} — is a server running there? (scripts/serve starts one)") from None
    name = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
    print(name)
    return 0 if status == health_pb2.HealthCheckResponse.SERVING else 1
