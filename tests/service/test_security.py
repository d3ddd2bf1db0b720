"""TLS, mutual TLS and the shared token, with certificates made in the test."""
import datetime

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import SHIPPED_MODEL
from helpers import ServerProcess
from service.client import NextWordClient

pytestmark = pytest.mark.slow  # see pyproject.toml

PEM = serialization.Encoding.PEM


def make_ca(name):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    return key, cert


def issue(ca, name, server):
    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
               .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1)))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    key_pem = key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return key_pem, cert.public_bytes(PEM)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca, other_ca = make_ca("nextword test CA"), make_ca("somebody else's CA")
    files = {"ca": ca[1].public_bytes(PEM), "other_ca": other_ca[1].public_bytes(PEM)}
    files["server_key"], files["server_cert"] = issue(ca, "localhost", server=True)
    files["client_key"], files["client_cert"] = issue(ca, "a client", server=False)
    files["rogue_key"], files["rogue_cert"] = issue(other_ca, "a rogue client", server=False)
    for name, data in files.items():
        (d / name).write_bytes(data)
    return d


REFUSED = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}  # the handshake never completes


def client(server, pki, timeout=5, **kw):
    return NextWordClient(f"localhost:{server.port}", timeout=timeout, retries=0, **kw)


def test_tls_serves_clients_that_trust_its_ca_and_refuses_others(pki):
    server = ServerProcess("--model-dir", SHIPPED_MODEL, "--tls-cert", pki / "server_cert", "--tls-key", pki / "server_key")
    try:
        with client(server, pki, root_certificates=(pki / "ca").read_bytes()) as c:
            assert c.predict("how are yo")[0].text == "you"
        with client(server, pki, 1, root_certificates=(pki / "other_ca").read_bytes()) as c, pytest.raises(grpc.RpcError) as e:
            c.predict("how are yo")
        assert e.value.code() in REFUSED  # the client does not trust the server's certificate
        with NextWordClient(f"localhost:{server.port}", timeout=1, retries=0) as plain, pytest.raises(grpc.RpcError) as e:
            plain.predict("how are yo")  # plaintext to a TLS port
        assert e.value.code() in REFUSED
        assert server.proc.poll() is None
    finally:
        server.stop()


def test_mutual_tls_requires_a_client_certificate_from_the_client_ca(pki):
    server = ServerProcess("--model-dir", SHIPPED_MODEL, "--tls-cert", pki / "server_cert", "--tls-key", pki / "server_key",
                           "--tls-client-ca", pki / "ca")
    trust = {"root_certificates": (pki / "ca").read_bytes()}
    try:
        with client(server, pki, certificate_chain=(pki / "client_cert").read_bytes(),
                    private_key=(pki / "client_key").read_bytes(), **trust) as c:
            assert c.predict("how are yo")[0].text == "you"
        for kw in ({}, {"certificate_chain": (pki / "rogue_cert").read_bytes(), "private_key": (pki / "rogue_key").read_bytes()}):
            with client(server, pki, 1, **trust, **kw) as c, pytest.raises(grpc.RpcError) as e:
                c.predict("how are yo")
            assert e.value.code() in REFUSED  # no client certificate, or one from another CA
        assert server.proc.poll() is None
    finally:
        server.stop()


def test_shared_token(pki):
    server = ServerProcess("--model-dir", SHIPPED_MODEL, "--auth-token", "s3cret")
    try:
        with NextWordClient(server.address, token="s3cret") as c:
            assert c.predict("how are yo")[0].text == "you"
            with c.session() as typing:
                assert typing.text("how are yo")[0].text == "you"
        for token in (None, "wrong"):
            with NextWordClient(server.address, token=token, retries=0) as c:
                with pytest.raises(grpc.RpcError) as e:
                    c.predict("how are yo")
                assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED and "token" in e.value.details()
                with pytest.raises(grpc.RpcError) as e, c.session() as typing:
                    typing.text("hi")
                assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert server.health() == 1  # health stays open for probes: SERVING
    finally:
        server.stop()
