"""A small PKI for TLS tests, made with ``cryptography`` (a dependency of ansible-core, itself a
test dependency): CA, server and client certificates as PEM files."""
from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path
from typing import Dict

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject, key, issuer, issuer_key, ca=False, hosts=()):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if hosts:
        alt = [x509.IPAddress(ipaddress.ip_address(h)) if h[0].isdigit() else x509.DNSName(h) for h in hosts]
        b = b.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _write(path, cert=None, key=None):
    data = b""
    if cert is not None:
        data += cert.public_bytes(serialization.Encoding.PEM)
    if key is not None:
        data += key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    path.write_bytes(data)
    return str(path)


def make_pki(d: Path, server_hosts=("127.0.0.1", "localhost")) -> Dict[str, str]:
    """In ``d``: a CA and another CA, a server certificate for ``server_hosts`` and one for
    another host, a client certificate of the CA and one of the other CA (PEM files)."""
    out = {}
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("test CA", ca_key, "test CA", ca_key, ca=True)
    other_key = ec.generate_private_key(ec.SECP256R1())
    other = _cert("other CA", other_key, "other CA", other_key, ca=True)
    out["ca"] = _write(d / "ca.pem", ca)
    out["other_ca"] = _write(d / "other-ca.pem", other)
    for name, hosts in (("server", tuple(server_hosts)), ("elsewhere", ("consul.example",))):
        k = ec.generate_private_key(ec.SECP256R1())
        out[name] = _write(d / ("%s.pem" % name), _cert(name, k, "test CA", ca_key, hosts=hosts), k)
    k = ec.generate_private_key(ec.SECP256R1())
    out["client_cert"] = _write(d / "client.crt", _cert("client", k, "test CA", ca_key))
    out["client_key"] = _write(d / "client.key", None, k)
    k = ec.generate_private_key(ec.SECP256R1())
    out["rogue_cert"] = _write(d / "rogue.crt", _cert("rogue", k, "other CA", other_key))
    out["rogue_key"] = _write(d / "rogue.key", None, k)
    return out
