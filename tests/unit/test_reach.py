"""companion_ws.reach: the address a phone is given, and the development certificate
(docs/protocol.md section 17, "A real phone")."""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path

from cryptography import x509

from companion_ws.reach import dev_certificate, lan_address, printed_base


def test_the_public_url_wins_and_all_interfaces_print_the_lan_address() -> None:
    public = "https://hub.example.com/"
    assert printed_base("0.0.0.0", 8000, tls=False, public_url=public) == public.rstrip("/")
    assert printed_base("127.0.0.1", 8000, tls=False, public_url=None) == "http://127.0.0.1:8000"
    assert printed_base("0.0.0.0", 8443, tls=True, public_url=None) == (
        f"https://{lan_address()}:8443"
    )
    assert printed_base("::1", 80, tls=False, public_url=None) == "http://[::1]:80"
    lan = ipaddress.ip_address(lan_address())
    assert lan.version == 4


def test_the_development_certificate_names_this_machine_and_is_kept(tmp_path: Path) -> None:
    cert, key = dev_certificate(tmp_path, "0.0.0.0")
    assert key.stat().st_mode & 0o777 == 0o600
    loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    alt = loaded.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ips = {str(ip) for ip in alt.get_values_for_type(x509.IPAddress)}
    assert {"127.0.0.1", lan_address()} <= ips
    assert "localhost" in alt.get_values_for_type(x509.DNSName)
    # A TLS server takes the pair as it is.
    ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    # Made once: the next start reuses it while it is good and names every name...
    assert dev_certificate(tmp_path, "0.0.0.0") == (cert, key)
    before = cert.read_bytes()
    dev_certificate(tmp_path, "0.0.0.0")
    assert cert.read_bytes() == before
    # ...and makes a new one for a name it lacks.
    dev_certificate(tmp_path, "companion.local")
    assert cert.read_bytes() != before
