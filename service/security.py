"""Transport security and the optional shared token.

TLS (and mutual TLS with a client CA) comes from the settings; the token check is an
interceptor, so handlers never see credentials. Health checks are exempt from the token:
orchestrators (Kubernetes gRPC probes, Docker HEALTHCHECK) cannot send one.
"""
from __future__ import annotations

import hmac
from pathlib import Path

import grpc

from service.settings import Settings, SettingsError

EXEMPT = ("/grpc.health.v1.Health/",)


def server_credentials(s: Settings) -> grpc.ServerCredentials | None:
    if not s.tls_cert:
        return None
    try:
        cert, key = Path(s.tls_cert).read_bytes(), Path(s.tls_key).read_bytes()
        client_ca = Path(s.tls_client_ca).read_bytes() if s.tls_client_ca else None
    except OSError as e:
        raise SettingsError(f"cannot read TLS file {e.filename}: {e.strerror}") from None
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=client_ca,
                                       require_client_auth=client_ca is not None)


class TokenInterceptor(grpc.aio.ServerInterceptor):
    """Refuses calls without `authorization: Bearer <token>` with UNAUTHENTICATED."""

    def __init__(self, token: str):
        self.expected = f"Bearer {token}".encode()

    async def intercept_service(self, continuation, details):
        if details.method.startswith(EXEMPT):
            return await continuation(details)
        sent = dict(details.invocation_metadata or ()).get("authorization", "")
        sent = sent.encode() if isinstance(sent, str) else sent
        if hmac.compare_digest(sent, self.expected):  # constant time: the token does not leak by timing
            return await continuation(details)
        return _refuse_handler(await continuation(details))


REFUSAL = "missing or wrong token (send metadata 'authorization: Bearer <token>')"


def _refuse_handler(handler):
    """A handler of the same kind as the one asked for, that only says UNAUTHENTICATED."""
    if handler is None:
        return None

    async def unary(request, context):
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, REFUSAL)

    async def streaming(request, context):
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, REFUSAL)
        yield  # makes this an async generator, as streaming handlers are

    codec = (handler.request_deserializer, handler.response_serializer)
    if handler.stream_stream:
        return grpc.stream_stream_rpc_method_handler(streaming, *codec)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(streaming, *codec)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(unary, *codec)
    return grpc.unary_unary_rpc_method_handler(unary, *codec)
