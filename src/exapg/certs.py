"""A private CA and a server certificate for PostgreSQL's TLS (`exapg certs`).

Keys are written with mode 0600 and never overwritten unless asked. The CA key stays
with the invoking user; only the server key may be handed to the container's user
(`owner`), so a mounted folder never lets a database container sign certificates.
cryptography is imported where a key or certificate is made: `exapg --help` names the
defaults below without loading it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from exapg.errors import InvalidParameterError

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

DEFAULT_HOSTNAMES = (
    "localhost", "127.0.0.1", "coordinator", "standby", "worker1", "worker2", "worker", "pgbouncer",
)
DEFAULT_DAYS = 825  # the longest validity clients such as macOS accept for server certificates
KEY_FILES = ("ca.key", "server.key")


@dataclass(frozen=True)
class CertFiles:
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path

    def to_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.__dict__.items()}


def parse_owner(text: str | None) -> tuple[int, int] | None:
    """'999:999' or '999' to (uid, gid)."""
    if not text:
        return None
    uid, _, gid = text.partition(":")
    if not uid.isdigit() or (gid and not gid.isdigit()):
        raise InvalidParameterError(f"--owner must be UID or UID:GID in numbers (got {text!r})")
    return int(uid), int(gid or uid)


def _key() -> ec.EllipticCurvePrivateKey:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ExaPG"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _validity(builder: x509.CertificateBuilder, days: int) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return builder.not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))


def make_ca(days: int) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    key = _key()
    name = _name("ExaPG private CA")
    builder = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return _validity(builder, days).sign(key, hashes.SHA256()), key


def _alt_names(hostnames: list[str]) -> list[x509.GeneralName]:
    from cryptography import x509

    names: list[x509.GeneralName] = []
    for host in hostnames:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def make_server(hostnames: list[str], ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, days: int
                ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    key = _key()
    builder = (
        x509.CertificateBuilder().subject_name(_name(hostnames[0])).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(_alt_names(hostnames)), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    return _validity(builder, days).sign(ca_key, hashes.SHA256()), key


def _write(path: Path, data: bytes, mode: int) -> None:
    """Create with `mode` from the start, so a key is never readable by others."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem_cert(cert: x509.Certificate) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def generate(folder: Path, *, hostnames: list[str] | None = None, days: int = DEFAULT_DAYS,
             owner: tuple[int, int] | None = None, force: bool = False) -> CertFiles:
    """Write ca.crt, ca.key, server.crt and server.key into `folder`."""
    names = list(hostnames or DEFAULT_HOSTNAMES)
    if not 1 <= days <= 3650:
        raise InvalidParameterError("--days must be between 1 and 3650")
    files = CertFiles(folder / "ca.crt", folder / "ca.key", folder / "server.crt", folder / "server.key")
    existing = [p.name for p in (files.ca_key, files.server_key) if p.exists()]
    if existing and not force:
        raise InvalidParameterError(f"{folder} already holds {', '.join(existing)}: pass --force to replace them")
    folder.mkdir(parents=True, exist_ok=True)
    ca, ca_key = make_ca(days)
    server, server_key = make_server(names, ca, ca_key, days)
    _write(files.ca_key, _pem_key(ca_key), 0o600)
    _write(files.ca_cert, _pem_cert(ca), 0o644)
    _write(files.server_key, _pem_key(server_key), 0o600)
    _write(files.server_cert, _pem_cert(server) + _pem_cert(ca), 0o644)
    if owner is not None:
        os.chown(files.server_key, *owner)
        os.chown(files.server_cert, *owner)
    return files
