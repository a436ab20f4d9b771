"""Serving HTTPS from certificate files that are replaced while the provider runs.

kube-apiserver trusts only an ``https`` issuer. The certificate and key come from files (a mounted TLS
Secret, which cert-manager renews in place); a thread looks at them every few seconds and, when they
changed and load as a pair, new connections get the new certificate. Connections already open keep
theirs. The handshake picks the current context through the SNI callback, so the swap is one reference.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from pathlib import Path

logger = logging.getLogger(__name__)

#: Seconds between looks at the files (a renewal is announced days ahead: this is plenty).
CHECK_INTERVAL = 2.0


class TLSFiles:
    """A server-side SSL context whose certificate follows the files."""

    def __init__(self, cert_file: Path, key_file: Path, *, check_interval: float = CHECK_INTERVAL) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self.check_interval = check_interval
        self._current = self._load()  # fails at start on unreadable or mismatched files
        self._seen = self._fingerprint()
        # The context uvicorn wraps connections with: each handshake switches to the current one.
        self.context = self._load()
        self.context.sni_callback = self._pick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _load(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def _fingerprint(self) -> tuple[tuple[int, int, int], ...]:
        # Stat through symlinks: a Secret volume swaps a ..data link, the files' own inodes change.
        stats = [os.stat(path) for path in (self.cert_file, self.key_file)]
        return tuple((stat.st_ino, stat.st_size, stat.st_mtime_ns) for stat in stats)

    def _pick(self, connection: ssl.SSLObject, server_name: str | None, context: ssl.SSLContext) -> None:
        connection.context = self._current

    def reload_if_changed(self) -> bool:
        """Load the files again if they changed; True when the new certificate is in use."""
        try:
            seen = self._fingerprint()
            if seen == self._seen:
                return False
            loaded = self._load()
        except (OSError, ssl.SSLError) as error:
            # Half-written files or a key that does not match yet: keep serving the old pair.
            logger.warning("TLS certificate not reloaded, the current one stays in use: %s", error)
            return False
        self._current, self._seen = loaded, seen
        logger.info("TLS certificate reloaded from %s", self.cert_file)
        return True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch, name="kubeoidc-tls", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _watch(self) -> None:
        while not self._stop.wait(self.check_interval):
            self.reload_if_changed()
