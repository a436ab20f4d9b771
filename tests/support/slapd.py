"""A real OpenLDAP server (Debian's ``slapd``) for the LDAP identity source tests.

:class:`Slapd` writes its own configuration, certificates (a test CA and a server certificate for
127.0.0.1) and data folder, seeds the directory with ``slapadd`` before it starts, and listens on
loopback for ``ldap://`` and ``ldaps://``. It runs in its own process group and is stopped by its PID;
:meth:`Slapd.stop` and :meth:`Slapd.start` again keep the same ports and data (a server restart).

The directory (``dc=example,dc=com``):
- ``cn=reader``: the service account the source searches with (:data:`READER_PASSWORD`);
- ``uid=ada`` (groups ``engineers`` and ``admins``), ``uid=grace`` (``engineers``);
- ``uid=mallory``, disabled (``employeeType: disabled``, which :data:`USER_FILTER` excludes), with a
  valid password.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import pytest

from support.certificates import CertificateAuthority

SLAPD: Final = "/usr/sbin/slapd"
SUFFIX: Final = "dc=example,dc=com"
READER_DN: Final = f"cn=reader,{SUFFIX}"
READER_PASSWORD: Final = "reader-secret-7f3a"
PASSWORDS: Final = {"ada": "ada-pass-Analytical1", "grace": "grace-pass-Cobol59", "mallory": "mallory-pass-X"}
#: Active people only: the disabled account is not found, so it cannot sign in.
USER_FILTER: Final = "(&(objectClass=inetOrgPerson)(!(employeeType=disabled)))"
_SCHEMAS: Final = ("core", "cosine", "inetorgperson", "nis")


def require_slapd() -> None:
    """Skip (fail under CI=true) when Debian's slapd is not installed."""
    if Path(SLAPD).exists() and shutil.which("slappasswd") and shutil.which("slapadd"):
        return
    message = "slapd and ldap-utils are not installed (scripts/setup test installs them)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def running_slapd(folder: Path) -> Iterator[Slapd]:
    """A started :class:`Slapd` in ``folder`` (:func:`require_slapd` first), stopped after."""
    require_slapd()
    server = Slapd(folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Slapd:
    """One slapd with a seeded directory; ``url`` is LDAPS, ``plain_url`` plain LDAP."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port, self.tls_port = _free_port(), _free_port()
        self.url = f"ldaps://127.0.0.1:{self.tls_port}"
        self.plain_url = f"ldap://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        self.ca_pem = self._certificates()
        (folder / "data").mkdir()
        self._write_config()
        self._seed()

    # Lifecycle --------------------------------------------------------------------------------------
    def start(self) -> None:
        with (self.folder / "slapd.log").open("ab") as log:
            self._process = subprocess.Popen(
                [
                    SLAPD,
                    "-f",
                    str(self.folder / "slapd.conf"),
                    "-h",
                    f"{self.plain_url}/ {self.url}/",
                    "-d",
                    "0",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"slapd exited: {(self.folder / 'slapd.log').read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.tls_port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("slapd did not listen within 20 s")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    # Set-up -----------------------------------------------------------------------------------------
    def _certificates(self) -> str:
        ca = CertificateAuthority("kubeoidc test LDAP CA")
        (self.folder / "ca.crt").write_bytes(ca.pem)
        ca.write_server_files(
            self.folder / "server.crt", self.folder / "server.key", ips=["127.0.0.1"], dns=["localhost"]
        )
        return ca.pem.decode()

    def _write_config(self) -> None:
        f = self.folder
        includes = "\n".join(f"include /etc/ldap/schema/{name}.schema" for name in _SCHEMAS)
        (f / "slapd.conf").write_text(
            f"""{includes}
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {f}/slapd.pid
TLSCACertificateFile {f}/ca.crt
TLSCertificateFile {f}/server.crt
TLSCertificateKeyFile {f}/server.key
database mdb
maxsize 10485760
suffix "{SUFFIX}"
rootdn "cn=admin,{SUFFIX}"
directory {f}/data
access to attrs=userPassword by anonymous auth by * none
access to * by dn.exact="{READER_DN}" read by self read by * none
"""
        )

    def _seed(self) -> None:
        def hashed(password: str) -> str:
            result = subprocess.run(
                ["slappasswd", "-s", password], check=True, capture_output=True, text=True
            )
            return result.stdout.strip()

        people = {
            # Every attribute the default claimAttributes read (c needs extensibleObject on a person).
            "ada": (
                "Ada Lovelace",
                "ada@example.com",
                "objectClass: extensibleObject\ngivenName: Ada\ndisplayName: Ada\n"
                "labeledURI: https://ada.example.com The Analytical Engine\npreferredLanguage: en-GB\n"
                "telephoneNumber: +44 20 7946 0018\npostalAddress: 12 St James's Square$London\n"
                "street: 12 St James's Square\nl: London\nst: Greater London\npostalCode: SW1Y 4JH\n"
                "c: GB\n",
            ),
            "grace": ("Grace Hopper", "grace@example.com", ""),
            "mallory": ("Mallory Disabled", "mallory@example.com", "employeeType: disabled\n"),
        }
        entries = [
            f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n",
            f"dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n",
            f"dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n",
            f"dn: {READER_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
            f"cn: reader\nuserPassword: {hashed(READER_PASSWORD)}\n",
        ]
        for uid, (name, mail, extra) in people.items():
            entries.append(
                f"dn: uid={uid},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {name}\n"
                f"sn: {name.split()[-1]}\nmail: {mail}\n{extra}userPassword: {hashed(PASSWORDS[uid])}\n"
            )
        members = {"engineers": ["ada", "grace"], "admins": ["ada"]}
        for group, uids in members.items():
            lines = "".join(f"member: uid={uid},ou=people,{SUFFIX}\n" for uid in uids)
            entries.append(
                f"dn: cn={group},ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: {group}\n{lines}"
            )
        ldif = self.folder / "seed.ldif"
        ldif.write_text("\n".join(entries))
        subprocess.run(
            ["slapadd", "-f", str(self.folder / "slapd.conf"), "-l", str(ldif)],
            check=True,
            capture_output=True,
        )

    def spec(self, **overrides: object) -> dict[str, object]:
        """An IdentitySource spec for this server over LDAPS, with the service account and groups."""
        ldap: dict[str, object] = {
            "url": self.url,
            "caSecretRef": {"name": "ldap-ca"},
            "bindDN": READER_DN,
            "bindPasswordRef": {"name": "ldap-reader"},
            "timeoutSeconds": 3,
            "userSearch": {"baseDN": f"ou=people,{SUFFIX}", "filter": USER_FILTER},
            "groupSearch": {"baseDN": f"ou=groups,{SUFFIX}"},
        }
        ldap.update(overrides)
        return {"type": "LDAP", "displayName": "Example LDAP", "ldap": ldap}

    def secrets(self, name: str, key: str) -> str | None:
        """The Secrets :meth:`spec` refers to."""
        values = {("ldap-ca", "ca.crt"): self.ca_pem, ("ldap-reader", "password"): READER_PASSWORD}
        return values.get((name, key))
