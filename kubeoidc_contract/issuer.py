"""The issuer-URL rule both sides apply: the operator writes the issuer into every client Secret, the
provider puts it in every token, and relying parties compare the two character for character (OIDC
Discovery 1.0 §4.3), so both must accept, refuse and spell an issuer the same way.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost`` and loopback addresses: the only hosts where plain http is acceptable."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_issuer(value: str) -> str:
    """``value`` unchanged if it is an acceptable issuer, else ValueError saying what is wrong.

    Checked, never normalised here: the issuer is compared character for character.
    """
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL, e.g. https://login.example.com")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError("must use https (plain http is allowed only on a loopback host)")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or a fragment (OpenID Connect Discovery 1.0 §3)")
    return value
