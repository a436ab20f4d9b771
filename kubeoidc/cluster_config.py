"""``kubeoidc cluster-config``: what to tell a cluster so people log in to it with kubeoidc.

Two YAML documents: kube-apiserver's structured authentication configuration
(``apiserver.config.k8s.io/v1`` ``AuthenticationConfiguration``, given with ``--authentication-config``;
Kubernetes >= 1.30) with one JWT authenticator for the issuer, and the kubeconfig ``users:`` entry that
runs ``kubeoidc login`` as an exec credential plugin.

- The audience is the login client's ID: ID tokens of any other client are refused.
- Usernames come from ``email``, and only a verified one (``email_verified`` must be true), or from
  ``sub`` with a prefix (``oidc:``, so they cannot collide with other users); groups come from ``groups``
  with a prefix, so RBAC binds ``oidc:platform``, never a built-in group such as ``system:masters``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from kubeoidc.login import DEFAULT_SCOPES, EXEC_API_VERSION

USERNAME_CLAIMS = ("email", "sub")
DEFAULT_PREFIX = "oidc:"
EMAIL_VERIFIED_RULE = "claims.?email_verified.orValue(false) == true"


def authentication_configuration(
    *,
    issuer: str,
    client_id: str,
    ca_pem: str | None,
    username_claim: str = "email",
    username_prefix: str | None = None,
    groups_prefix: str = DEFAULT_PREFIX,
) -> dict[str, Any]:
    """The AuthenticationConfiguration with one JWT authenticator for the issuer."""
    if username_claim not in USERNAME_CLAIMS:
        raise ValueError(f"the username comes from one of {', '.join(USERNAME_CLAIMS)}, not {username_claim}")
    issuer_block: dict[str, Any] = {"url": issuer, "audiences": [client_id]}
    if ca_pem:
        issuer_block["certificateAuthority"] = ca_pem
    if username_prefix is None:
        # An email is already unique and recognisable; a bare sub is not.
        username_prefix = "" if username_claim == "email" else DEFAULT_PREFIX
    authenticator: dict[str, Any] = {
        "issuer": issuer_block,
        "claimMappings": {
            "username": {"claim": username_claim, "prefix": username_prefix},
            "groups": {"claim": "groups", "prefix": groups_prefix},
        },
    }
    if username_claim == "email":
        authenticator["claimValidationRules"] = [
            {"expression": EMAIL_VERIFIED_RULE, "message": "the email address is not verified"}
        ]
    return {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AuthenticationConfiguration",
        "jwt": [authenticator],
    }


def kubeconfig_user(
    *,
    name: str,
    issuer: str,
    client_id: str,
    ca_file: Path | None,
    scopes: Sequence[str] = DEFAULT_SCOPES,
    command: str = "kubeoidc",
) -> dict[str, Any]:
    """The kubeconfig ``users:`` entry whose credentials come from ``kubeoidc login``."""
    args = ["login", "--issuer", issuer, "--client-id", client_id]
    if ca_file is not None:
        args += ["--certificate-authority", str(ca_file)]
    if tuple(scopes) != DEFAULT_SCOPES:
        args += ["--scopes", " ".join(scopes)]
    return {
        "users": [
            {
                "name": name,
                "user": {
                    "exec": {
                        "apiVersion": EXEC_API_VERSION,
                        "command": command,
                        "args": args,
                        # The browser or the device code is the interaction: stdin is never read.
                        "interactiveMode": "Never",
                        "provideClusterInfo": False,
                    }
                },
            }
        ]
    }


class _Dumper(yaml.SafeDumper):
    """YAML with multi-line strings (the CA's PEM) as literal blocks, as people write them."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _dump(document: dict[str, Any]) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False)


def render(
    *,
    issuer: str,
    client_id: str,
    ca_file: Path | None,
    username_claim: str = "email",
    username_prefix: str | None = None,
    groups_prefix: str = DEFAULT_PREFIX,
    user_name: str = "oidc",
    only: str | None = None,
) -> str:
    """Both documents, commented, ready to save; or ``only`` one (``authentication``, ``kubeconfig``)."""
    ca_pem = ca_file.read_text() if ca_file is not None else None
    config = authentication_configuration(
        issuer=issuer,
        client_id=client_id,
        ca_pem=ca_pem,
        username_claim=username_claim,
        username_prefix=username_prefix,
        groups_prefix=groups_prefix,
    )
    user = kubeconfig_user(name=user_name, issuer=issuer, client_id=client_id, ca_file=ca_file)
    authentication = (
        "# kube-apiserver: save as a file on the control plane and start it with\n"
        "#   --authentication-config=<that file>   (re-read when it changes)\n" + _dump(config)
    )
    kubeconfig = (
        "# kubeconfig: merge into ~/.kube/config, then add a context with this user, e.g.\n"
        f"#   kubectl config set-context oidc --cluster=<cluster> --user={user_name}\n" + _dump(user)
    )
    if only == "authentication":
        return authentication
    if only == "kubeconfig":
        return kubeconfig
    return authentication + "---\n" + kubeconfig
