"""TLS, mutual TLS and the shared token, with certificates made in the test."""
import datetime
import os
import time

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import SHIPPED_MODEL, nextword
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


def test_tls_files_that_are_not_a_certificate_and_its_key_are_said_in_one_line(pki, tmp_path):
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    for cert, key, said in ((garbage, garbage, "must be a PEM certificate chain and its PEM private key"),
                            (pki / "server_key", pki / "server_cert", "must be a PEM certificate chain"),
                            (pki / "server_cert", pki / "client_key", "is not the key of --tls-cert")):
        proc = nextword("serve", "--grpc-port", "0", "--metrics-port", "-1", "--tls-cert", cert, "--tls-key", key,
                        "--data-dir", tmp_path, check=False)
        assert proc.returncode == 2 and said in proc.stderr and "port in use" not in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_the_command_line_clients_speak_tls_and_the_token(pki):
    server = ServerProcess("--model-dir", SHIPPED_MODEL, "--tls-cert", pki / "server_cert", "--tls-key", pki / "server_key",
                           "--auth-token", "s3cret")
    address = f"localhost:{server.port}"
    try:
        ok = nextword("predict", "how are yo", "--address", address, "--tls-ca", pki / "ca", env=token_env("s3cret"))
        assert ok.stdout.startswith("you")
        flag = nextword("predict", "how are yo", "--address", address, "--tls-ca", pki / "ca", "--token", "s3cret",
                        env=token_env(None))
        assert flag.stdout.startswith("you")
        health = nextword("health", "--address", address, "--tls-ca", pki / "ca", env=token_env(None))
        assert health.stdout.strip() == "SERVING"
        for at, extra, said in ((server.address, [], "may speak TLS"), (address, ["--tls-ca", pki / "other_ca"], "is not trusted"),
                                (address, ["--tls-ca", pki / "ca"], "UNAUTHENTICATED")):
            started = time.monotonic()
            proc = nextword("predict", "hi", "--address", at, *extra, env=token_env(None), check=False)
            assert proc.returncode == 2 and said in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
            assert time.monotonic() - started < 5  # the interpreter's start included
    finally:
        server.stop()


def test_a_wrong_address_is_said_in_about_a_second(server):
    for address, said in ((f"127.0.0.1:{server.metrics_port}", "is not a gRPC server"),
                          (server.address, "does not speak TLS")):
        extra = ["--tls"] if "TLS" in said else []
        started = time.monotonic()
        proc = nextword("predict", "hi", "--address", address, *extra, check=False)
        assert proc.returncode == 2 and said in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert time.monotonic() - started < 5


def token_env(token):
    env = {k: v for k, v in os.environ.items() if k != "NEXTWORD_AUTH_TOKEN"}
    return env if token is None else {**env, "NEXTWORD_AUTH_TOKEN": token}
