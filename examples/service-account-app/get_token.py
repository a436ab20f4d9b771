"""Get an access token from kubeoidc with the pod's own ServiceAccount token: no client secret.

Runs in a pod of examples/service-account-app/deployment.yaml: the client ID and the issuer come from the
client's Secret (as OIDC_CLIENT_ID and OIDC_ISSUER), the projected token from its file, read again each time
because the kubelet renews it. Only the standard library.
"""

import json
import os
import sys
import urllib.parse
import urllib.request

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def access_token(scope: str) -> str:
    with open(os.environ["OIDC_TOKEN_FILE"]) as file:
        assertion = file.read().strip()
    form = urllib.parse.urlencode(
        {
            "grant_type": "client_credentials",
            "scope": scope,
            "client_id": os.environ["OIDC_CLIENT_ID"],
            "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion,
        }
    ).encode()
    issuer = os.environ["OIDC_ISSUER"]
    if not issuer.startswith(("https://", "http://")):
        raise ValueError(f"OIDC_ISSUER is not an http(s) URL: {issuer!r}")
    with urllib.request.urlopen(f"{issuer}/token", data=form, timeout=10) as response:  # noqa: S310
        return str(json.load(response)["access_token"])


if __name__ == "__main__":
    token = access_token(sys.argv[1] if len(sys.argv) > 1 else "payments:read")
    print("got an access token of", len(token), "characters")  # never print the token itself
