"""How a phone reaches the hub (docs/protocol.md section 17, "A real phone"): the address
printed and put in join links, and TLS, which a phone's browser needs before it gives a
page the microphone.

- :func:`printed_base`: ``COMPANION_PUBLIC_URL`` when set; else the address the hub
  listens on, with the machine's LAN address for "all interfaces" (``0.0.0.0``, ``::``),
  since ``127.0.0.1`` in a QR code means the phone itself.
- :func:`dev_certificate`: a self-signed certificate (the ``cryptography`` package) for
  a LAN trial (``--dev-tls``), naming ``localhost``, the loopback and LAN addresses and
  the host given; kept beside the database and reused while it is valid.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import socket
from pathlib import Path
from typing import Any

from companion_ws import devtokens

__all__ = [
    "ALL_INTERFACES",
    "TlsFiles",
    "add_tls_arguments",
    "dev_certificate",
    "lan_address",
    "lan_links",
    "printed_base",
    "tls_files",
]

ALL_INTERFACES = frozenset({"0.0.0.0", "", "::", "[::]"})
#: How long a development certificate is good for; it is made again after that.
DEV_CERT_DAYS = 30

TlsFiles = tuple[Path, Path]  # (certificate, private key), PEM


def lan_address() -> str:
    """This machine's address on its network (the one its default route leaves by), or
    ``127.0.0.1`` when it has none. No packet is sent: a UDP socket is only pointed at a
    documentation address so the kernel picks the source address."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere real
        address = str(probe.getsockname()[0])
    except OSError:
        return "127.0.0.1"
    finally:
        probe.close()
    return address


def printed_base(host: str, port: int, *, tls: bool, public_url: str | None) -> str:
    """The base URL to print and to build links from. [pure but for :func:`lan_address`]"""
    if public_url:
        return public_url.rstrip("/")
    shown = lan_address() if host in ALL_INTERFACES else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"  # an IPv6 address in a URL
    return f"{'https' if tls else 'http'}://{shown}:{port}"


def dev_certificate(folder: Path, host: str) -> TlsFiles:
    """A self-signed certificate and its key in ``folder`` (made, or the valid one there),
    for ``localhost``, ``127.0.0.1``, the LAN address and ``host``."""
    cert_path = folder / "companion-dev-tls.crt"
    key_path = folder / "companion-dev-tls.key"
    names = _names(host)
    if _still_good(cert_path, names) and key_path.exists():
        return cert_path, key_path
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "companion-ws development")])
    now = datetime.datetime.now(datetime.UTC)
    alt: list[x509.GeneralName] = []
    for name in sorted(names):
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=DEV_CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    _write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _names(host: str) -> set[str]:
    names = {"localhost", "127.0.0.1", lan_address()}
    if host not in ALL_INTERFACES:
        names.add(host.strip("[]"))
    return names


def _still_good(cert_path: Path, names: set[str]) -> bool:
    """The certificate there is valid for a day more and names every name."""
    if not cert_path.exists():
        return False
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    named = {str(v) for v in alt.get_values_for_type(x509.IPAddress)}
    named |= set(alt.get_values_for_type(x509.DNSName))
    left = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    return names <= named and left > datetime.timedelta(days=1)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def add_tls_arguments(parser: argparse.ArgumentParser) -> None:
    """``--certfile``/``--keyfile``/``--dev-tls`` (``serve`` and ``demo``)."""
    parser.add_argument("--certfile", help="serve HTTPS with this PEM certificate (chain)")
    parser.add_argument("--keyfile", help="the PEM private key of --certfile")
    parser.add_argument(
        "--dev-tls",
        action="store_true",
        help="serve HTTPS with a self-signed certificate made for this machine (a LAN "
        "trial: the phone's browser warns once)",
    )


def tls_files(args: argparse.Namespace, database_url: str | None) -> TlsFiles | None:
    """The certificate and key to serve HTTPS with (``--certfile``/``--keyfile``, or a
    development one beside the database with ``--dev-tls``), or None for HTTP."""
    if args.dev_tls:
        if args.certfile or args.keyfile:
            raise ValueError("--dev-tls makes its own certificate: drop --certfile/--keyfile")
        folder = devtokens.key_file(database_url).parent if database_url else Path.cwd()
        return dev_certificate(folder, args.host)
    if bool(args.certfile) != bool(args.keyfile):
        raise ValueError("--certfile and --keyfile go together")
    if args.certfile:
        return Path(args.certfile), Path(args.keyfile)
    return None


def lan_links(app: Any, lan_url: str) -> None:
    """Join links asked for over the loopback name ``lan_url`` (the hub listens on every
    interface: a phone scanning a loopback link would open itself)."""
    from starlette.applications import Starlette

    http = getattr(app, "fallback", None)
    while http is not None and not isinstance(http, Starlette):
        http = getattr(http, "app", None)  # through the middleware (the body limit)
    if http is not None:
        http.state.lan_url = lan_url
