"""URL helpers that keep a registered redirect URI intact while adding response parameters."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode


def add_query(uri: str, params: Mapping[str, str]) -> str:
    """Append parameters to a URI's query, keeping what is already there (RFC 6749 §3.1.2)."""
    base, hash_mark, fragment = uri.partition("#")
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}{urlencode(params)}{hash_mark}{fragment}"
