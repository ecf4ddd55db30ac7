"""`exapg certs`: a CA and a server certificate that PostgreSQL really serves over TLS."""

from __future__ import annotations

import os
import pwd
import stat

import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from exapg.certs import generate, parse_owner
from exapg.errors import InvalidParameterError
from tests.docker.cli import run
from tests.docker.scratch import PASSWORD, scratch_dir, start


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_and_modes(tmp_path):
    files = generate(tmp_path / "ssl", hostnames=["db.example", "10.1.2.3"], days=30)
    assert mode(files.ca_key) == 0o600 and mode(files.server_key) == 0o600
    assert mode(files.ca_cert) == 0o644 and mode(files.server_cert) == 0o644
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    server.verify_directly_issued_by(ca)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["db.example"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.1.2.3"]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def test_existing_keys_are_kept_unless_forced(tmp_path):
    first = generate(tmp_path, days=30)
    before = first.server_key.read_bytes()
    with pytest.raises(InvalidParameterError, match="--force"):
        generate(tmp_path, days=30)
    assert first.server_key.read_bytes() == before
    generate(tmp_path, days=30, force=True)
    assert first.server_key.read_bytes() != before


@pytest.mark.parametrize("text", ["postgres", "1:x", ":5"])
def test_owner_must_be_numeric(text):
    with pytest.raises(InvalidParameterError):
        parse_owner(text)


def test_owner_parsing():
    assert parse_owner("999:998") == (999, 998)
    assert parse_owner("999") == (999, 999)
    assert parse_owner(None) is None


def test_cli_writes_the_folder_and_refuses_to_overwrite(tmp_path):
    folder = tmp_path / "ssl"
    first = run(["certs", str(folder), "-H", "coordinator", "--json"], {})
    assert first.code == 0, first.output
    assert {p.name for p in folder.iterdir()} == {"ca.crt", "ca.key", "server.crt", "server.key"}
    again = run(["certs", str(folder)], {})
    assert again.code == 2 and "--force" in again.output


def test_keys_are_ec_p256(tmp_path):
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(generate(tmp_path, days=30).server_key.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"


@pytest.mark.skipif(os.geteuid() != 0, reason="handing the key to the postgres user needs root")
def test_postgresql_serves_the_certificate(tmp_path_factory):
    root = scratch_dir(tmp_path_factory)
    entry = pwd.getpwnam("postgres")
    files = generate(root / "ssl", hostnames=["localhost", "127.0.0.1"], days=30,
                     owner=(entry.pw_uid, entry.pw_gid))
    (root / "ssl").chmod(0o755)
    server = start(root / "server", f"-c ssl=on -c ssl_cert_file={files.server_cert} "
                                    f"-c ssl_key_file={files.server_key}")
    try:
        conninfo = (f"host=localhost port={server.port} dbname=postgres user=postgres "
                    f"sslmode=verify-full sslrootcert={files.ca_cert} connect_timeout=5")
        with psycopg.connect(conninfo, password=PASSWORD) as conn:
            assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()[0]
        other = generate(root / "other", days=30)
        with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
            psycopg.connect(conninfo.replace(str(files.ca_cert), str(other.ca_cert)), password=PASSWORD).close()
    finally:
        server.stop()
