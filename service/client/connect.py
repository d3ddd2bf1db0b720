"""How a command-line client (nextword predict, health, type, web) finds the server: the
--address and --timeout flags, and a quick check that something listens there."""
from __future__ import annotations

import os
import socket

import grpc

from service.client.common import ClientError

DEFAULT_PORT = 50051  # nextword serve's --grpc-port default


def add_address_flags(parser, timeout: float) -> None:
    """--address and --timeout, the same for every command that talks to a running server."""
    parser.add_argument("--address", default=None, help="server address host:port (default: localhost and the configured gRPC port)")
    parser.add_argument("--timeout", type=float, default=timeout, help="deadline for each call (seconds)")


def resolve_address(args) -> str:
    """The --address given, or localhost at the port `nextword serve` would use (NEXTWORD_GRPC_PORT)."""
    if args.timeout <= 0:
        raise ClientError(f"--timeout must be positive, got {args.timeout}")
    if args.address:
        return args.address
    return f"localhost:{os.environ.get('NEXTWORD_GRPC_PORT') or DEFAULT_PORT}"


def require_server(address: str, within: float = 5.0) -> None:
    """Fail, with a hint, when nothing listens at a host:port address: at once where the
    connection is refused, after `within` seconds where it hangs. A plain TCP connect: a
    server that is only slow to answer (a busy machine) is not reported missing, and no
    gRPC channel is left polling. Other targets (dns:///, unix:) are left to gRPC."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or "/" in host:
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=within).close()
    except OSError:
        raise ClientError(f"no server at {address} — start one with scripts/serve") from None


def check_user(client, user: str) -> None:
    """Fail at start, in one line, when the server refuses a user key (unsigned, signed with
    another secret, or a server without users), rather than on every keystroke later."""
    if not user:
        return
    try:
        client.predict("", user=user)
    except grpc.RpcError as e:
        if e.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED,
                        grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT):
            raise ClientError(f"the server does not take this --user key: {e.details()}") from None
        raise ClientError(f"{e.code().name}: {e.details()}") from None
