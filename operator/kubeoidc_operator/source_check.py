"""Checking an IdentitySource from the operator: its Secrets, then its server (network I/O, no kopf).

An upstream OpenID Provider must answer its discovery document with its own ``issuer``; an LDAP server
must accept the service account's bind (over LDAPS or StartTLS, checking the server's certificate).
Timeouts are short: a check never holds the operator long. No Secret value reaches a message or a log.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Callable, Mapping
from typing import Any

import httpx2
from ldap3 import NONE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException

import kubeoidc_contract as contract
from kubeoidc_contract.crd import identity_source_spec

from .source_status import CheckOutcome

#: Reads a key of a Secret in the source's namespace: ``(name, key)`` to text, or None.
SecretLookup = Callable[[str, str], str | None]
HTTP_TIMEOUT = 10.0


class _SpecProblem(Exception):
    pass


def check_source(spec: Mapping[str, Any], secrets: SecretLookup) -> CheckOutcome:
    """Check one IdentitySource spec (defaults applied here, as the API server does)."""
    full = identity_source_spec(spec)
    try:
        if full.get("type") == contract.SOURCE_OIDC:
            oidc = full["oidc"]
            _secret(oidc["clientSecretRef"], "spec.oidc.clientSecretRef", secrets)
            return _check_discovery(str(oidc["issuer"]).rstrip("/"))
        ldap = full["ldap"]
        ca = (
            _secret(ldap["caSecretRef"], "spec.ldap.caSecretRef", secrets)
            if ldap.get("caSecretRef")
            else None
        )
        password = None
        if ldap.get("bindPasswordRef"):
            password = _secret(ldap["bindPasswordRef"], "spec.ldap.bindPasswordRef", secrets)
        if str(ldap["url"]).startswith("ldap://") and not ldap["startTLS"] and not ldap["insecureNoTLS"]:
            raise _SpecProblem("spec.ldap.url is ldap:// without TLS: use ldaps:// or set startTLS")
        return _check_bind(ldap, ca, password)
    except _SpecProblem as problem:
        return CheckOutcome(str(problem), None, "InvalidSpec", str(problem))


def _secret(ref: Mapping[str, Any], field: str, secrets: SecretLookup) -> str:
    value = secrets(str(ref["name"]), str(ref["key"]))
    if value is None:
        raise _SpecProblem(
            f"{field}: the Secret {ref['name']!r} has no key {ref['key']!r} (or does not exist)"
        )
    return value.strip()


def _check_discovery(issuer: str) -> CheckOutcome:
    url = f"{issuer}/.well-known/openid-configuration"
    try:
        response = httpx2.get(url, timeout=HTTP_TIMEOUT)
        document = response.json() if response.status_code == 200 else None
    except (httpx2.HTTPError, ValueError) as error:
        return CheckOutcome(None, False, "DiscoveryFailed", f"{url} did not answer: {type(error).__name__}")
    if not isinstance(document, dict):
        return CheckOutcome(
            None, False, "DiscoveryFailed", f"{url} answered {response.status_code}, not JSON"
        )
    if str(document.get("issuer", "")).rstrip("/") != issuer:
        return CheckOutcome(
            None, False, "IssuerMismatch", f"{url} names another issuer: {document.get('issuer')!r}"
        )
    return CheckOutcome(None, True, "DiscoveryReachable", f"{url} answers as {issuer}")


def _check_bind(ldap: Mapping[str, Any], ca: str | None, password: str | None) -> CheckOutcome:
    url, timeout = str(ldap["url"]), int(ldap["timeoutSeconds"])
    use_ssl = url.startswith("ldaps://")
    tls = None
    if use_ssl or ldap["startTLS"]:
        tls = Tls(validate=ssl.CERT_REQUIRED, version=ssl.PROTOCOL_TLS_CLIENT, ca_certs_data=ca)
    server = Server(url, use_ssl=use_ssl, tls=tls, connect_timeout=timeout, get_info=NONE)
    bind_dn = ldap.get("bindDN") or None
    connection = Connection(server, user=bind_dn, password=password, receive_timeout=timeout)
    try:
        connection.open()
        if ldap["startTLS"] and not connection.start_tls():
            return CheckOutcome(None, False, "StartTLSFailed", f"{url} refused StartTLS")
        if not connection.bind():
            description = connection.result.get("description")
            return CheckOutcome(
                None, False, "BindFailed", f"the service bind as {bind_dn} failed ({description})"
            )
    except LDAPException as error:
        return CheckOutcome(None, False, "Unreachable", f"{url}: {type(error).__name__}")
    finally:
        with contextlib.suppress(LDAPException):
            connection.unbind()
        socket = getattr(connection, "socket", None)
        if socket is not None:
            socket.close()
    return CheckOutcome(None, True, "BindSucceeded", f"the service bind as {bind_dn or 'anonymous'} works")
