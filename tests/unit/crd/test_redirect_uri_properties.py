"""Redirect URI rules hold for generated URIs, not only for the hand-picked ones."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import kubeoidc_contract as contract
from kubeoidc.manifest import Violation, validate_oidcclient

FRAGMENT = "a redirect URI must not have a fragment (the part after '#')"
WILDCARD = "a redirect URI must not contain a wildcard ('*'): list every URI exactly"
SCHEME = (
    "a redirect URI must be absolute, with the scheme https, or http on localhost, 127.0.0.1 or [::1], "
    "or a private-use scheme containing a dot such as com.example.app:/callback (RFC 8252)"
)

# The CEL rules run in cel-python: a few milliseconds per manifest, and no example database in the tree.
checks = settings(max_examples=60, deadline=None, database=None)

labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,14}[a-z0-9])?", fullmatch=True)
hosts = st.lists(labels, min_size=2, max_size=4).map(".".join)
ports = st.one_of(st.just(""), st.integers(1, 65535).map(lambda port: f":{port}"))
paths = st.lists(st.from_regex(r"[A-Za-z0-9._~!$&'()+,;=:@%-]{0,12}", fullmatch=True), max_size=4).map(
    lambda segments: "".join(f"/{segment}" for segment in segments)
)
queries = st.one_of(st.just(""), st.from_regex(r"\?[A-Za-z0-9=&._-]{0,20}", fullmatch=True))
https_uris = st.builds(
    lambda host, port, path, query: f"https://{host}{port}{path}{query}", hosts, ports, paths, queries
)
loopback_uris = st.builds(
    lambda host, port, path: f"http://{host}{port}{path}",
    st.sampled_from(["localhost", "127.0.0.1", "[::1]"]),
    ports,
    paths,
)
fragments = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="*"), max_size=12
)


def client(uri: str) -> dict[str, Any]:
    return {
        "apiVersion": contract.API_VERSION,
        "kind": contract.KIND,
        "metadata": {"name": "app"},
        "spec": {"redirectURIs": [uri]},
    }


@checks
@given(https_uris)
def test_https_redirect_uris_are_accepted(uri: str) -> None:
    assert validate_oidcclient(client(uri)) == []


@checks
@given(loopback_uris)
def test_http_redirect_uris_on_loopback_hosts_are_accepted(uri: str) -> None:
    assert validate_oidcclient(client(uri)) == []


@checks
@given(https_uris, fragments)
def test_a_redirect_uri_with_a_fragment_is_refused_for_its_fragment(uri: str, fragment: str) -> None:
    assert validate_oidcclient(client(f"{uri}#{fragment}")) == [Violation("spec.redirectURIs[0]", FRAGMENT)]


@checks
@given(https_uris, st.data())
def test_a_redirect_uri_with_a_wildcard_anywhere_is_refused(uri: str, data: st.DataObject) -> None:
    at = data.draw(st.integers(0, len(uri)))
    messages = [v.message for v in validate_oidcclient(client(f"{uri[:at]}*{uri[at:]}"))]
    assert WILDCARD in messages


@checks
@given(hosts, ports, paths)
def test_plain_http_on_any_other_host_is_refused(host: str, port: str, path: str) -> None:
    assert validate_oidcclient(client(f"http://{host}{port}{path}")) == [
        Violation("spec.redirectURIs[0]", SCHEME)
    ]
