"""The control plane's keys and certificates, made locally with `cryptography`: a CA, the API server's serving
certificate (loopback names only), client certificates (admin, controller-manager) and the service-account key pair.

Everything is written as PEM files into one folder (private keys mode 0600); nothing leaves the machine.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALID_FOR = datetime.timedelta(days=30)
SERVICE_IP = "10.0.0.1"  # the first address of the service range the API server is started with
_SERVER_NAMES = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc")


@dataclass(frozen=True)
class ClientCert:
    """A client certificate and its key (PEM files)."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    """Paths of every PEM file the control plane uses."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    sa_public: Path
    sa_private: Path
    admin: ClientCert
    controller_manager: ClientCert


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALID_FOR)
    )


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    """A CA signs certificates; a leaf signs and (for RSA) enciphers keys."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=not ca,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _issue(
    folder: Path,
    stem: str,
    subject: x509.Name,
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    *,
    usage: x509.ObjectIdentifier,
    names: x509.SubjectAlternativeName | None = None,
) -> ClientCert:
    key = _key()
    builder = (
        _builder(subject, ca.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(_key_usage(ca=False), critical=True)
    )
    if names is not None:
        builder = builder.add_extension(names, critical=False)
    paths = ClientCert(folder / f"{stem}.crt", folder / f"{stem}.key")
    _write_cert(paths.cert, builder.sign(ca_key, hashes.SHA256()))
    _write_key(paths.key, key)
    return paths


def make_pki(folder: Path) -> Pki:
    """Create a fresh CA and every key and certificate the control plane needs in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca_name = _name("proxnix-testbed-ca")
    ca = (
        _builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    _write_cert(folder / "ca.crt", ca)
    _write_key(folder / "ca.key", ca_key)

    names = x509.SubjectAlternativeName(
        [x509.DNSName(n) for n in _SERVER_NAMES]
        + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ("127.0.0.1", SERVICE_IP)]
    )
    server = _issue(
        folder,
        "apiserver",
        _name("kube-apiserver"),
        ca,
        ca_key,
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        names=names,
    )
    client = ExtendedKeyUsageOID.CLIENT_AUTH
    admin = _issue(folder, "admin", _name("proxnix-admin", "system:masters"), ca, ca_key, usage=client)
    # The controller-manager runs every controller with its own identity (no per-controller service accounts), so
    # it needs what the garbage collector needs: everything.
    manager = _issue(
        folder,
        "controller-manager",
        _name("system:kube-controller-manager", "system:masters"),
        ca,
        ca_key,
        usage=client,
    )

    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_key(folder / "sa.key", sa_key)
    (folder / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return Pki(
        ca_cert=folder / "ca.crt",
        ca_key=folder / "ca.key",
        server_cert=server.cert,
        server_key=server.key,
        sa_public=folder / "sa.pub",
        sa_private=folder / "sa.key",
        admin=admin,
        controller_manager=manager,
    )
