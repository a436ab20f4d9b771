"""A provider with identity sources (a real slapd), served through a TestClient."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

import kubeoidc_contract as contract
from kubeoidc_provider.app import create_app
from kubeoidc_provider.context import Provider
from kubeoidc_provider.identity.catalog import SourceCatalog
from kubeoidc_provider.storage.memory import MemoryStorage
from support.provider import ISSUER, make_provider
from support.provider_flow import Browser
from support.slapd import Slapd, running_slapd


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    with running_slapd(tmp_path_factory.mktemp("slapd")) as server:
        yield server


@pytest.fixture
def sources(slapd: Slapd) -> SourceCatalog:
    catalog = SourceCatalog(ISSUER + contract.UPSTREAM_CALLBACK_PATH)
    assert catalog.apply("corp", slapd.spec(), slapd.secrets) is None
    return catalog


@pytest.fixture
def provider(sources: SourceCatalog) -> Provider:
    return make_provider(issuer=ISSUER, alg="ES256", storage=MemoryStorage(), sources=sources)


@pytest.fixture
def http(provider: Provider) -> Iterator[TestClient]:
    with TestClient(create_app(provider), base_url=ISSUER) as client:
        yield client


@pytest.fixture
def browser(http: TestClient) -> Browser:
    return Browser(http, ISSUER)
