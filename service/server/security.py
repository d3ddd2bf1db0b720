"""Transport security and the optional shared token.

TLS (and mutual TLS with a client CA) comes from the settings; the token check is an
interceptor, so handlers never see credentials. User keys (personal suggestions) are
signed by the app backend with the server's user secret, so no client can name a user
it was not given a key for. Health checks are exempt from the token:
orchestrators (Kubernetes gRPC probes, Docker HEALTHCHECK) cannot send one.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import ssl
from pathlib import Path

import grpc

from service.server.errors import InvalidInput, Unsigned, WrongSignature
from service.server.settings import Settings, SettingsError
from service.userkeys import signature_of

EXEMPT = ("/grpc.health.v1.Health/",)


def server_credentials(s: Settings) -> grpc.ServerCredentials | None:
    if not s.tls_cert:
        return None
    try:
        cert, key = Path(s.tls_cert).read_bytes(), Path(s.tls_key).read_bytes()
        client_ca = Path(s.tls_client_ca).read_bytes() if s.tls_client_ca else None
    except OSError as e:
        raise SettingsError(f"cannot read TLS file {e.filename}: {e.strerror}") from None
    check_tls_files(s)
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=client_ca,
                                       require_client_auth=client_ca is not None)


def check_tls_files(s: Settings) -> None:
    """Load the certificate, key and client CA as a TLS server would, so that a file that is
    not PEM, or a key that is not the certificate's, is said in one line at start (gRPC
    itself only fails to listen, which reads like a busy port)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(s.tls_cert, s.tls_key)
    except ssl.SSLError as e:
        mismatch = "KEY_VALUES_MISMATCH" in str(e)
        raise SettingsError(f"--tls-key {s.tls_key} is not the key of --tls-cert {s.tls_cert}" if mismatch else
                            f"--tls-cert {s.tls_cert} and --tls-key {s.tls_key} must be a PEM certificate chain and "
                            f"its PEM private key ({e.reason or e})") from None
    if s.tls_client_ca:
        try:
            context.load_verify_locations(s.tls_client_ca)
        except ssl.SSLError as e:
            raise SettingsError(f"--tls-client-ca {s.tls_client_ca} is not a PEM CA bundle ({e.reason or e})") from None


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


# ---- user keys: who a request's `user` is ------------------------------------------------

def load_user_secret(path: Path, create: bool) -> bytes:
    """The secret that signs user keys; made (random, readable by its owner only) if missing.
    Made whole beside it, then linked into place: workers starting together all read one."""
    try:
        if create and not path.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            draft = path.with_name(f".{path.name}.{os.getpid()}")
            with os.fdopen(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                f.write(secrets.token_hex(32) + "\n")
            try:
                os.link(draft, path)
            except FileExistsError:  # another worker made it first
                pass
            finally:
                draft.unlink()
        secret = path.read_bytes().strip()
    except OSError as e:
        raise SettingsError(f"cannot read the user secret {path}: {e.strerror}") from None
    if len(secret) < 16:
        raise SettingsError(f"the user secret {path} is too short: at least 16 characters")
    return secret


class UserKeys:
    """Checks a request's user key and gives the id the store keeps for it: an HMAC of the
    user with the deployment's secret, so the store never holds a name and nobody without
    the secret can tell from it whose data a row is.

    - signed: keys must be signed with the server's user secret (`sign_user`), so a client
      cannot name another user; a key without a signature is Unsigned, a wrong one WrongSignature.
    - open: any key is taken as it is; only where every caller may act for every user (one
      user's own machine, or a backend that is the only caller, behind the token or mTLS).
    """

    MAX_LENGTH = 256

    def __init__(self, mode: str, secret: bytes):
        self.mode, self.secret = mode, secret

    def store_id(self, key: str) -> str:
        if len(key) > self.MAX_LENGTH:
            raise InvalidInput(f"user key is longer than {self.MAX_LENGTH} characters")
        if self.mode == "signed":
            user, _, signature = key.rpartition(".")
            if not user or not signature:
                raise Unsigned("user key is not signed: give the key your app backend signed with this server's user secret")
            if not hmac.compare_digest(signature.encode(), signature_of(self.secret, user).encode()):
                raise WrongSignature("user key signature does not match this server's user secret")
        else:
            user = key
        return hmac.new(self.secret, b"store:" + user.encode(), hashlib.sha256).hexdigest()[:32]
