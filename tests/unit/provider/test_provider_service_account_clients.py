"""Clients that their ServiceAccounts' tokens authenticate (RFC 7523 §2.2): what a client sees.

The cluster is a stand-in here (a key of the test's own, behind the fetch the provider's background
thread calls); ``tests/cluster/`` does the same against a real API server and its TokenRequest API.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from kubeoidc_contract import SERVICE_ACCOUNT_AUTH_METHOD
from kubeoidc_provider.app import Background, build_provider, create_app
from kubeoidc_provider.assertions import JWT_BEARER
from kubeoidc_provider.cluster_issuer import ClusterIssuer, Discovered
from kubeoidc_provider.context import Provider
from kubeoidc_provider.keys import KeySet
from kubeoidc_provider.registry import ClientRegistry
from kubeoidc_provider.service_accounts import ServiceAccountDirectory
from kubeoidc_provider.settings import ProviderSettings
from kubeoidc_provider.storage.memory import MemoryStorage
from kubeoidc_provider.users import StaticUserDirectory
from support.objects import client_objects
from support.provider import ISSUER, RegisteredClient
from support.provider_flow import Browser, RelyingParty, sign_in_for_code
from support.service_account_tokens import ServiceAccountSigner

NAMESPACE = "billing"
ACCOUNT = "billing-api"
OTHER_ACCOUNT = "reports"


class FakeCluster:
    """What the API server's issuer discovery answers; counts how often it is asked."""

    def __init__(self) -> None:
        self.signers = [ServiceAccountSigner()]
        self.fetches = 0
        self.uids = {(NAMESPACE, ACCOUNT): str(uuid.uuid4()), (NAMESPACE, OTHER_ACCOUNT): str(uuid.uuid4())}
        self.uids[("elsewhere", ACCOUNT)] = str(uuid.uuid4())

    @property
    def signer(self) -> ServiceAccountSigner:
        return self.signers[-1]

    def fetch(self) -> Discovered:
        self.fetches += 1
        keys = [key for signer in self.signers for key in signer.jwks()["keys"]]
        return Discovered(self.signer.issuer, {"keys": keys})

    def service_account(self, namespace: str, name: str) -> dict[str, Any]:
        uid = self.uids[(namespace, name)]
        return {"metadata": {"namespace": namespace, "name": name, "uid": uid}}

    def token(self, namespace: str = NAMESPACE, name: str = ACCOUNT, **claims: Any) -> str:
        claims.setdefault("audience", ISSUER)
        return self.signer.token(namespace=namespace, name=name, uid=self.uids[(namespace, name)], **claims)


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster()


@pytest.fixture
def accounts(cluster: FakeCluster) -> ServiceAccountDirectory:
    directory = ServiceAccountDirectory()
    directory.replace_all([cluster.service_account(ns, name) for ns, name in cluster.uids])
    return directory


@pytest.fixture
def sa_settings() -> dict[str, Any]:
    """Settings of the provider beyond its issuer; a test parametrizes this to change them."""
    return {}


@pytest.fixture
def sa_provider(
    cluster: FakeCluster,
    accounts: ServiceAccountDirectory,
    users: StaticUserDirectory,
    key_sets: Callable[[str], KeySet],
    sa_settings: dict[str, Any],
) -> Provider:
    registry = ClientRegistry()
    registry.mark_ready()
    return build_provider(
        ProviderSettings(issuer=ISSUER, storage_url="memory://", **sa_settings),
        registry=registry,
        users=users,
        keys=key_sets("RS256"),
        storage=MemoryStorage(),
        cluster_issuer=ClusterIssuer(cluster.fetch, refresh_interval=3600, min_interval=60),
        service_accounts=accounts,
    )


@pytest.fixture
def sa_http(sa_provider: Provider) -> Iterator[TestClient]:
    issuer = sa_provider.assertions.cluster
    app = create_app(sa_provider, background=(Background(issuer.start, issuer.stop),))
    with TestClient(app, base_url=ISSUER) as http:
        yield http


def register_workload(
    provider: Provider, name: str = "billing", *, secret: str | None = None, **options: Any
) -> RegisteredClient:
    options.setdefault("grant_types", ["client_credentials"])
    options.setdefault("redirect_uris", [])
    options.setdefault("scopes", ["invoices:read", "invoices:write"])
    oidcclient, secret_obj = client_objects(
        name,
        client_id=f"{name}-{uuid.uuid4().hex[:8]}",
        secret=secret,
        namespace=NAMESPACE,
        auth_method=SERVICE_ACCOUNT_AUTH_METHOD,
        service_accounts=options.pop("service_accounts", [ACCOUNT]),
        **options,
    )
    provider.registry.upsert_oidcclient(oidcclient)
    provider.registry.upsert_secret(secret_obj)
    uris = oidcclient["spec"]["redirectURIs"]
    return RegisteredClient(
        oidcclient["status"]["clientID"], None, uris[0] if uris else "", (oidcclient, secret_obj)
    )


@pytest.fixture
def workload(sa_provider: Provider) -> RegisteredClient:
    return register_workload(sa_provider)


def client_credentials(http: TestClient, client: RegisteredClient, assertion: str, **form: str) -> Any:
    data = {
        "grant_type": "client_credentials",
        "client_id": client.client_id,
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion,
        **form,
    }
    return http.post("/token", data=data)


def assert_invalid_client(response: Any, description: str) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["error"] == "invalid_client"
    assert body["error_description"] == description


# Accepted ---------------------------------------------------------------------------------------------


def test_a_service_account_token_gets_a_client_credentials_token_with_the_clients_scopes(
    sa_http: TestClient, workload: RegisteredClient, cluster: FakeCluster
) -> None:
    response = client_credentials(sa_http, workload, cluster.token(), scope="invoices:read invoices:write")

    assert response.status_code == 200, response.text
    token = response.json()
    assert token["token_type"] == "Bearer"
    assert token["scope"] == "invoices:read invoices:write"
    introspected = sa_http.post(
        "/introspect",
        data={
            "token": token["access_token"],
            "client_id": workload.client_id,
            "client_assertion_type": JWT_BEARER,
            "client_assertion": cluster.token(),
        },
    ).json()
    assert introspected["active"] is True
    assert introspected["client_id"] == introspected["sub"] == workload.client_id


def test_the_token_endpoint_is_an_audience_too(
    sa_http: TestClient, workload: RegisteredClient, cluster: FakeCluster
) -> None:
    response = client_credentials(sa_http, workload, cluster.token(audience=[f"{ISSUER}/token"]))

    assert response.status_code == 200, response.text


def test_any_of_the_clients_service_accounts_authenticates_it(
    sa_http: TestClient, sa_provider: Provider, cluster: FakeCluster
) -> None:
    client = register_workload(sa_provider, service_accounts=[ACCOUNT, OTHER_ACCOUNT])

    assert client_credentials(sa_http, client, cluster.token(name=OTHER_ACCOUNT)).status_code == 200


def test_a_confidential_code_flow_client_exchanges_its_code_with_a_service_account_token(
    sa_http: TestClient, sa_provider: Provider, cluster: FakeCluster
) -> None:
    client = register_workload(
        sa_provider,
        "portal",
        grant_types=["authorization_code", "refresh_token"],
        redirect_uris=["https://portal.example.com/callback"],
        scopes=["openid", "profile", "offline_access"],
    )
    rp = RelyingParty(sa_http, client)
    rp.assertion = cluster.token()
    request, code = sign_in_for_code(Browser(sa_http, ISSUER), rp, scope="openid profile offline_access")

    tokens = rp.exchange(request, code)
    assert tokens.status_code == 200, tokens.text
    refreshed = rp.refresh(tokens.json()["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    assert "id_token" in refreshed.json()
    assert rp.revoke(refreshed.json()["refresh_token"]).status_code == 200


# Refused with invalid_client -----------------------------------------------------------------------------

NOT_ITS_ACCOUNT = "The client assertion's ServiceAccount is not one of this client's."


def test_another_service_accounts_token_is_refused(
    sa_http: TestClient, workload: RegisteredClient, cluster: FakeCluster
) -> None:
    response = client_credentials(sa_http, workload, cluster.token(name=OTHER_ACCOUNT))

    assert_invalid_client(response, NOT_ITS_ACCOUNT)


def test_the_same_service_account_name_in_another_namespace_is_refused(
    sa_http: TestClient, workload: RegisteredClient, cluster: FakeCluster
) -> None:
    response = client_credentials(sa_http, workload, cluster.token(namespace="elsewhere"))

    assert_invalid_client(response, NOT_ITS_ACCOUNT)


def test_a_token_for_another_audience_is_refused(
    sa_http: TestClient, workload: RegisteredClient, cluster: FakeCluster
) -> None:
    response = client_credentials(sa_http, workload, cluster.token(audience="https://kubernetes.default.svc"))

    assert_invalid_client(
        response, "The client assertion's audience must be this provider's issuer or its token endpoint."
    )


def test_an_expired_token_is_refused(
    sa_http: TestClient, workload: RegisteredClient, cluster: FakeCluster
) -> None:
    response = client_credentials(sa_http, workload, cluster.token(issued=1_000_000, lifetime=600))

    assert_invalid_client(response, "The client assertion has expired.")


def test_a_token_from_the_future_is_refused(
    sa_http: TestClient, workload: RegisteredClient, cluster: FakeCluster
) -> None:
    response = client_credentials(sa_http, workload, cluster.token(issued=time.time() + 600))

    assert_invalid_client(response, "The client assertion is not valid yet (nbf).")


def test_a_token_signed_by_a_key_that_is_not_the_clusters_is_refused(
    sa_http: TestClient, workload: RegisteredClient, cluster: FakeCluster
) -> None:
    impostor = ServiceAccountSigner(issuer=cluster.signer.issuer)
    claims = impostor.claims(
        namespace=NAMESPACE, name=ACCOUNT, uid=cluster.uids[(NAMESPACE, ACCOUNT)], audience=ISSUER
    )

    response = client_credentials(sa_http, workload, impostor.sign(claims))

    assert_invalid_client(response, "The client assertion is signed by a key this provider does not trust.")


def test_a_token_signed_by_an_impostor_under_the_clusters_key_id_is_refused(
    sa_http: TestClient, workload: RegisteredClient, cluster: FakeCluster
) -> None:
    impostor = ServiceAccountSigner(issuer=cluster.signer.issuer)
    claims = impostor.claims(
        namespace=NAMESPACE, name=ACCOUNT, uid=cluster.uids[(NAMESPACE, ACCOUNT)], audience=ISSUER
    )

    response = client_credentials(sa_http, workload, impostor.sign(claims, kid=cluster.signer.kid))

    assert_invalid_client(response, "The client assertion's signature does not verify.")


def test_a_token_of_a_re_created_service_account_is_refused(
    sa_http: TestClient, workload: RegisteredClient, cluster: FakeCluster, accounts: ServiceAccountDirectory
) -> None:
    old_token = cluster.token()
    accounts.delete(cluster.service_account(NAMESPACE, ACCOUNT))
    cluster.uids[(NAMESPACE, ACCOUNT)] = str(uuid.uuid4())
    accounts.upsert(cluster.service_account(NAMESPACE, ACCOUNT))

    refused = client_credentials(sa_http, workload, old_token)

    assert_invalid_client(
        refused, "The client assertion belongs to an earlier ServiceAccount of that name (it was re-created)."
    )
    assert client_credentials(sa_http, workload, cluster.token()).status_code == 200


def test_a_token_of_a_deleted_service_account_is_refused(
    sa_http: TestClient, workload: RegisteredClient, cluster: FakeCluster, accounts: ServiceAccountDirectory
) -> None:
    token = cluster.token()
    accounts.delete(cluster.service_account(NAMESPACE, ACCOUNT))

    assert_invalid_client(
        client_credentials(sa_http, workload, token),
        "The client assertion's ServiceAccount does not exist (any more).",
    )


def test_a_token_from_another_issuer_is_refused(
    sa_http: TestClient, workload: RegisteredClient, cluster: FakeCluster
) -> None:
    claims = cluster.signer.claims(
        namespace=NAMESPACE, name=ACCOUNT, uid=cluster.uids[(NAMESPACE, ACCOUNT)], audience=ISSUER
    )
    claims["iss"] = "https://other-cluster.example.com"

    assert_invalid_client(
        client_credentials(sa_http, workload, cluster.signer.sign(claims)),
        "The client assertion's issuer is not the one this provider trusts.",
    )


def test_a_kubernetes_claim_that_contradicts_the_subject_is_refused(
    sa_http: TestClient, workload: RegisteredClient, cluster: FakeCluster
) -> None:
    claims = cluster.signer.claims(
        namespace=NAMESPACE, name=ACCOUNT, uid=cluster.uids[(NAMESPACE, ACCOUNT)], audience=ISSUER
    )
    claims["kubernetes.io"]["serviceaccount"]["name"] = OTHER_ACCOUNT

    assert_invalid_client(
        client_credentials(sa_http, workload, cluster.signer.sign(claims)),
        "The client assertion's kubernetes.io claim does not match its subject.",
    )


@pytest.mark.parametrize(
    ("assertion", "description"),
    [
        ("not-a-jwt", "The client assertion is not a signed JWT."),
        ("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "The client assertion's algorithm is not accepted."),
        (
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
            "The client assertion's algorithm is not accepted.",
        ),
    ],
    ids=["garbage", "alg-none", "symmetric-alg"],
)
def test_an_assertion_that_is_not_an_asymmetrically_signed_jwt_is_refused(
    sa_http: TestClient, workload: RegisteredClient, assertion: str, description: str
) -> None:
    assert_invalid_client(client_credentials(sa_http, workload, assertion), description)


def test_another_assertion_type_is_refused(
    sa_http: TestClient, workload: RegisteredClient, cluster: FakeCluster
) -> None:
    response = client_credentials(
        sa_http,
        workload,
        cluster.token(),
        client_assertion_type="urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
    )

    assert_invalid_client(response, f"client_assertion_type must be {JWT_BEARER}.")


def test_an_assertion_without_client_id_is_refused(sa_http: TestClient, cluster: FakeCluster) -> None:
    response = sa_http.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": JWT_BEARER,
            "client_assertion": cluster.token(),
        },
    )

    assert_invalid_client(response, "A client assertion needs client_id to name the client.")


def test_a_client_with_a_secret_cannot_authenticate_with_a_service_account_token(
    sa_http: TestClient, sa_provider: Provider, cluster: FakeCluster
) -> None:
    oidcclient, secret_obj = client_objects(
        "ledger", client_id="ledger-0001", secret="s3cr3t-value", namespace=NAMESPACE,
        grant_types=["client_credentials"], redirect_uris=[], scopes=["invoices:read"],
    )  # fmt: skip
    sa_provider.registry.upsert_oidcclient(oidcclient)
    sa_provider.registry.upsert_secret(secret_obj)
    client = RegisteredClient("ledger-0001", "s3cr3t-value", "", (oidcclient, secret_obj))

    assert_invalid_client(
        client_credentials(sa_http, client, cluster.token()),
        "This client does not authenticate with a client assertion.",
    )


def test_a_secret_left_in_the_secret_of_a_service_account_client_is_never_accepted(
    sa_http: TestClient, sa_provider: Provider
) -> None:
    client = register_workload(sa_provider, "migrated", secret="the-old-secret-before-migrating")

    response = sa_http.post(
        "/token",
        data={"grant_type": "client_credentials"},
        auth=(client.client_id, "the-old-secret-before-migrating"),
    )

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize("sa_settings", [{"client_assertion_uses": 2}])
def test_one_assertion_authenticates_only_as_many_times_as_configured(
    sa_http: TestClient, workload: RegisteredClient, cluster: FakeCluster
) -> None:
    token = cluster.token()

    assert client_credentials(sa_http, workload, token).status_code == 200
    assert client_credentials(sa_http, workload, token).status_code == 200
    assert_invalid_client(
        client_credentials(sa_http, workload, token),
        "This client assertion has been used 2 times: present a fresh one.",
    )
    assert client_credentials(sa_http, workload, cluster.token()).status_code == 200


# The cluster's keys ------------------------------------------------------------------------------------


def test_a_token_signed_by_a_new_cluster_key_is_accepted_after_one_early_fetch(
    sa_http: TestClient, workload: RegisteredClient, cluster: FakeCluster
) -> None:
    assert client_credentials(sa_http, workload, cluster.token()).status_code == 200
    fetches = cluster.fetches
    cluster.signers.append(ServiceAccountSigner(issuer=cluster.signer.issuer))  # the cluster rotates

    response = client_credentials(sa_http, workload, cluster.token())

    assert response.status_code == 200, response.text
    assert cluster.fetches == fetches + 1


def test_unknown_key_ids_ask_the_api_server_at_most_once_per_interval(
    sa_http: TestClient, workload: RegisteredClient, cluster: FakeCluster
) -> None:
    impostor = ServiceAccountSigner(issuer=cluster.signer.issuer)
    claims = impostor.claims(
        namespace=NAMESPACE, name=ACCOUNT, uid=cluster.uids[(NAMESPACE, ACCOUNT)], audience=ISSUER
    )
    assert client_credentials(sa_http, workload, cluster.token()).status_code == 200
    fetches = cluster.fetches

    for _ in range(5):
        assert client_credentials(sa_http, workload, impostor.sign(claims)).status_code == 401

    assert cluster.fetches == fetches + 1


def test_without_a_cluster_no_service_account_token_authenticates(
    make_provider: Callable[..., Provider], serve: Callable[..., Any], cluster: FakeCluster
) -> None:
    provider = make_provider()
    client = register_workload(provider)

    with serve(provider) as http:
        response = client_credentials(http, client, cluster.token())

    assert_invalid_client(response, "The client assertion is signed by a key this provider does not trust.")
