"""ServiceAccount tokens shaped as kube-apiserver signs them, by a key of the test's own.

For the unit tests (the provider's cluster issuer is then this signer) and, on a real cluster, for the
tokens that must be refused: those signed by a key that is not the cluster's.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from kubeoidc_provider.cluster_issuer import Discovered


class ServiceAccountSigner:
    """A stand-in for a cluster's ServiceAccount token signer: one key, one issuer."""

    def __init__(
        self, issuer: str = "https://kubernetes.default.svc.cluster.local", alg: str = "RS256"
    ) -> None:
        self.issuer = issuer
        self.alg = alg
        self.key = RSAKey.generate_key(2048) if alg == "RS256" else ECKey.generate_key("P-256")
        self.kid = self.key.thumbprint()

    def jwks(self) -> dict[str, Any]:
        return {"keys": [{**self.key.as_dict(private=False), "kid": self.kid, "alg": self.alg, "use": "sig"}]}

    def discovered(self) -> Discovered:
        return Discovered(self.issuer, self.jwks())

    def claims(
        self,
        *,
        namespace: str,
        name: str,
        uid: str,
        audience: str | list[str],
        lifetime: int = 600,
        issued: float | None = None,
    ) -> dict[str, Any]:
        now = int(issued if issued is not None else time.time())
        return {
            "aud": [audience] if isinstance(audience, str) else audience,
            "exp": now + lifetime,
            "iat": now,
            "nbf": now,
            "iss": self.issuer,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": {
                "namespace": namespace,
                "node": {"name": "node-1", "uid": str(uuid.uuid4())},
                "pod": {"name": f"{name}-7d9f8b-x2x4z", "uid": str(uuid.uuid4())},
                "serviceaccount": {"name": name, "uid": uid},
            },
            "sub": f"system:serviceaccount:{namespace}:{name}",
        }

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        return jwt.encode({"alg": self.alg, "kid": self.kid, **header}, claims, self.key)

    def token(self, **claims: Any) -> str:
        return self.sign(self.claims(**claims))
