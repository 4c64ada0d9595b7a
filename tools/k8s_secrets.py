"""Write the files deploy/k8s/base's secretGenerator reads: a bearer token and TLS material.

    .venv/bin/python tools/k8s_secrets.py deploy/k8s/base/secrets [--namespace semlink]

``token``: 32 random bytes as hex (no newline). ``ca.crt``: a self-signed CA (EC P-256, 5
years); ``tls.crt``/``tls.key``: a server certificate it signs (1 year) for the Services'
DNS names (``decoder``, ``decoder.<ns>``, ``decoder.<ns>.svc``, ``...cluster.local``, and the
same for encoder, link and the Ray gateway), ``localhost`` and 127.0.0.1 (what the exec probes
dial). Existing files are kept unless ``--force``. The CA key is not written: re-run with
``--force`` to rotate everything.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import secrets
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVICES = ("encoder", "decoder", "link", "semlink-ray-gateway")


def dns_names(namespace: str) -> list[str]:
    names = ["localhost"]
    for service in SERVICES:
        names += [
            service,
            f"{service}.{namespace}",
            f"{service}.{namespace}.svc",
            f"{service}.{namespace}.svc.cluster.local",
        ]
    return names


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_tls(namespace: str) -> tuple[bytes, bytes, bytes]:
    """(ca.crt, tls.crt, tls.key) as PEM."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "semlink CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=5 * 365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names(namespace)]
    alt_names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "semlink")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return _pem(ca), _pem(cert), key_pem


def write_secrets(directory: Path, namespace: str = "semlink", force: bool = False) -> list[Path]:
    """Write token, ca.crt, tls.crt and tls.key into DIRECTORY; return the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    token = directory / "token"
    if force or not token.exists():
        token.write_text(secrets.token_hex(32))
        token.chmod(0o600)
        written.append(token)
    names = ("ca.crt", "tls.crt", "tls.key")
    if force or not all((directory / n).exists() for n in names):
        for name, data in zip(names, make_tls(namespace), strict=True):
            path = directory / name
            path.write_bytes(data)
            if name.endswith(".key"):
                path.chmod(0o600)
            written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--namespace", default="semlink")
    parser.add_argument("--force", action="store_true", help="Replace existing files.")
    args = parser.parse_args()
    for path in write_secrets(args.directory, args.namespace, args.force):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
