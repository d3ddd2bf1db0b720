"""How a command-line client (nextword predict, health, type, web, user-export, user-import)
reaches the server: one set of flags, each also a NEXTWORD_* variable (flag wins), read here
and nowhere else on the client side, and a first contact that says in about a second what
is wrong (no port, a URL, nothing listening, not gRPC, TLS on one side only, an untrusted
certificate) instead of waiting for a deadline.

    flag                 variable                    meaning
    --address            NEXTWORD_ADDRESS            host:port (default localhost and NEXTWORD_GRPC_PORT, or 50051)
    --timeout                                        deadline of each call, seconds
    --tls                NEXTWORD_TLS                TLS, trusting the system's CAs
    --tls-ca FILE        NEXTWORD_TLS_CA             TLS, trusting this CA (PEM): a server with its own CA
    --tls-client-cert    NEXTWORD_TLS_CLIENT_CERT    mutual TLS: this client's certificate chain (PEM)
    --tls-client-key     NEXTWORD_TLS_CLIENT_KEY     ... and its key (PEM)
    --token              NEXTWORD_AUTH_TOKEN         the server's --auth-token (the same variable)
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.client.async_client import AsyncNextWordClient
from service.client.client import NextWordClient
from service.client.common import ClientError

DEFAULT_PORT = 50051  # nextword serve's --grpc-port default
FIRST_CONTACT = 1.5   # seconds the first contact may take before the address is called wrong


@dataclass(frozen=True)
class Connection:
    address: str
    timeout: float
    tls: bool = False
    root_certificates: bytes | None = None
    certificate_chain: bytes | None = None
    private_key: bytes | None = None
    token: str | None = None

    def options(self) -> dict:
        """The keyword arguments of NextWordClient and AsyncNextWordClient."""
        return {"timeout": self.timeout, "tls": self.tls, "root_certificates": self.root_certificates,
                "certificate_chain": self.certificate_chain, "private_key": self.private_key, "token": self.token}

    def client(self) -> NextWordClient:
        return NextWordClient(self.address, **self.options())

    def async_client(self) -> AsyncNextWordClient:
        return AsyncNextWordClient(self.address, **self.options())


def add_address_flags(parser, timeout: float) -> None:
    """The connection flags, the same for every command that talks to a running server."""
    parser.add_argument("--address", default=None,
                        help="server address host:port [env NEXTWORD_ADDRESS; default localhost and the gRPC port "
                             "nextword serve would use]")
    parser.add_argument("--timeout", type=float, default=timeout, help="deadline for each call (seconds)")
    parser.add_argument("--tls", action="store_true", default=None, help="speak TLS, trusting the system's CAs [env NEXTWORD_TLS]")
    parser.add_argument("--tls-ca", default=None, metavar="FILE",
                        help="speak TLS, trusting this CA bundle (PEM), e.g. a server's own CA [env NEXTWORD_TLS_CA]")
    parser.add_argument("--tls-client-cert", default=None, metavar="FILE",
                        help="mutual TLS: this client's certificate chain (PEM) [env NEXTWORD_TLS_CLIENT_CERT]")
    parser.add_argument("--tls-client-key", default=None, metavar="FILE",
                        help="mutual TLS: this client's private key (PEM) [env NEXTWORD_TLS_CLIENT_KEY]")
    parser.add_argument("--token", default=None, help="the server's --auth-token [env NEXTWORD_AUTH_TOKEN]")


def _setting(args, name: str, variable: str, environ) -> str | None:
    value = getattr(args, name, None)
    return value if value is not None else environ.get(variable) or None


def _read(path: str | None, what: str) -> bytes | None:
    if not path:
        return None
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as e:
        raise ClientError(f"cannot read {what} {path}: {e.strerror}") from None


def connection(args, environ=os.environ) -> Connection:
    """The connection the flags and NEXTWORD_* variables ask for; a mistake in them is one line."""
    if args.timeout <= 0:
        raise ClientError(f"--timeout must be positive, got {args.timeout}")
    address = _setting(args, "address", "NEXTWORD_ADDRESS", environ) or f"localhost:{environ.get('NEXTWORD_GRPC_PORT') or DEFAULT_PORT}"
    check_address(address)
    tls = _setting(args, "tls", "NEXTWORD_TLS", environ)
    cert, key = (_setting(args, f"tls_client_{part}", f"NEXTWORD_TLS_CLIENT_{part.upper()}", environ) for part in ("cert", "key"))
    if bool(cert) != bool(key):
        raise ClientError("--tls-client-cert and --tls-client-key go together: give both or neither")
    return Connection(address, args.timeout, tls in (True, "1", "true", "yes", "on"),
                      _read(_setting(args, "tls_ca", "NEXTWORD_TLS_CA", environ), "the TLS CA"),
                      _read(cert, "the client certificate"), _read(key, "the client key"),
                      _setting(args, "token", "NEXTWORD_AUTH_TOKEN", environ))


def resolve_address(args, environ=os.environ) -> str:
    return connection(args, environ).address


def check_address(address: str) -> None:
    """An address that cannot be a gRPC target is said at once, with what to write instead."""
    if "://" in address and not address.startswith(("dns:", "unix:", "ipv4:", "ipv6:")):
        raise ClientError(f"--address takes host:port, not a URL: {address.split('://', 1)[1].rstrip('/') or address}?")
    host, colon, port = address.rpartition(":")
    if address.startswith(("dns:", "unix:", "ipv4:", "ipv6:")):
        return
    if not colon or not port.isdigit() or not host or host.endswith(":") and not host.startswith("["):
        raise ClientError(f"--address {address} has no port: give host:port, e.g. {address}:{DEFAULT_PORT}")


def require_server(address: str, within: float = FIRST_CONTACT) -> str:
    """Fail, with a hint, when nothing listens at a host:port address: at once where the
    connection is refused, after `within` seconds where it hangs. A plain TCP connect: no
    gRPC channel is left polling. Returns the ip:port that answered (a name like localhost
    has several addresses, and a server often listens on one of them only); other targets
    (dns:///, unix:) are left to gRPC, and returned as they are."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or "/" in host:
        return address
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=within) as sock:
            ip = sock.getpeername()[0]
    except OSError:
        raise ClientError(f"no server at {address} — start one with scripts/serve") from None
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


# What gRPC says when the first contact fails, and what it means for a person.
HINTS = (
    ("Failed parsing HTTP/2", "what answers at {address} is not a gRPC server (its metrics port, or a web server?)"),
    ("WRONG_VERSION_NUMBER", "the server at {address} does not speak TLS: leave out --tls and --tls-ca"),
    ("CERTIFICATE_VERIFY_FAILED", "the server's certificate at {address} is not trusted: pass --tls-ca with the CA that signed it"),
    ("Socket closed", "the server at {address} closed the connection: it may speak TLS (pass --tls-ca, or --tls), or "
                      "want a client certificate (--tls-client-cert, --tls-client-key)"),
    ("handshake", "TLS with {address} failed: check --tls-ca and the client certificate"),
)


def first_contact(conn: Connection) -> None:
    """A TCP connect, then a health check over the channel the client will use (the health
    service needs no token): within about a second, a line that says what is wrong."""
    target = require_server(conn.address)
    host = conn.address.rpartition(":")[0].strip("[]")
    if conn.tls or conn.root_certificates or conn.certificate_chain:  # the certificate is checked against the name given
        credentials = grpc.ssl_channel_credentials(conn.root_certificates, conn.private_key, conn.certificate_chain)
        channel = grpc.secure_channel(target, credentials, [("grpc.ssl_target_name_override", host)])
    else:
        channel = grpc.insecure_channel(target)
    with channel:
        try:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=FIRST_CONTACT)
        except grpc.RpcError as e:
            said = f"{e.details()} {e.debug_error_string()}"
            hint = next((h for key, h in HINTS if key in said), None)
            if hint:
                raise ClientError(hint.format(address=conn.address)) from None
            if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise ClientError(f"{conn.address} accepts connections but no gRPC answer came within "
                                  f"{FIRST_CONTACT:g} s (busy, or not a nextword server?)") from None
            if e.code() != grpc.StatusCode.UNIMPLEMENTED:  # a gRPC server without health: let the call say more
                raise ClientError(f"{conn.address}: {e.code().name}: {e.details()}") from None


def check_user(client, user: str) -> None:
    """Fail at start, in one line, when the server refuses a user key (unsigned, signed with
    another secret, or a server without users), rather than on every keystroke later."""
    if not user:
        return
    try:
        client.predict("", user=user)
    except grpc.RpcError as e:
        about_the_key = e.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED,
                                     grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT)
        if about_the_key and "token" not in (e.details() or ""):
            raise ClientError(f"the server does not take this --user key: {e.details()}") from None
        raise ClientError(f"{e.code().name}: {e.details()}") from None
