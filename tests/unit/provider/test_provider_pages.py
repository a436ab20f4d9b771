"""The pages' HTML: every value a client, a user or a request puts on a page is shown as text, never as
markup, whichever page shows it."""

from __future__ import annotations

import pytest
from httpx2 import Response
from starlette.testclient import TestClient

from kubeoidc_contract import DEVICE_CODE_GRANT_TYPE
from kubeoidc_provider.context import Provider
from kubeoidc_provider.pages import Html, Pages, PageTemplate
from support.provider import RegisteredClient, register
from support.provider_flow import Browser, RelyingParty, hidden, location

NAME = '<script>alert("name")</script>'
DESCRIPTION = "\"'><img src=x onerror=alert('description')>"
URL = "https://app.example.com/?a=1&b=\"><script>alert('url')</script>"
HOSTILE = {"displayName": NAME, "description": DESCRIPTION, "url": URL}


def page_after(browser: Browser, response: Response) -> Response:
    """The page the provider's own redirects lead to."""
    while browser.is_ours(response):
        response = browser.get(location(response))
    return response


def assert_shown_as_text(html: str) -> None:
    """The client's three texts are on the page, escaped; none of them became a tag or an attribute."""
    assert "<script>alert" not in html
    assert "<img" not in html
    assert "&lt;script&gt;alert(&#34;name&#34;)&lt;/script&gt;" in html
    assert "&#34;&#39;&gt;&lt;img src=x onerror=alert(&#39;description&#39;)&gt;" in html
    escaped_url = (
        "https://app.example.com/?a=1&amp;b=&#34;&gt;&lt;script&gt;alert(&#39;url&#39;)&lt;/script&gt;"
    )
    assert f'<a href="{escaped_url}" rel="noopener noreferrer">{escaped_url}</a>' in html


@pytest.fixture
def hostile(provider: Provider) -> RegisteredClient:
    return register(provider.registry, "hostile", spec_fields=HOSTILE)


def test_a_clients_name_description_and_url_are_escaped_on_the_login_and_consent_pages(
    http: TestClient, browser: Browser, hostile: RegisteredClient
) -> None:
    login = browser.get(location(browser.authorize(RelyingParty(http, hostile).auth_request().params)))
    consent = page_after(browser, browser.login(login))

    assert "Sign in to &lt;script&gt;" in login.text
    assert_shown_as_text(login.text)
    assert "<title>Allow &lt;script&gt;" in consent.text
    assert_shown_as_text(consent.text)


def test_a_clients_name_description_and_url_are_escaped_on_the_logout_page(
    http: TestClient, browser: Browser, hostile: RegisteredClient
) -> None:
    browser.sign_in(RelyingParty(http, hostile).auth_request().params)

    page = browser.get(f"/logout?client_id={hostile.client_id}")

    assert page.status_code == 200
    assert_shown_as_text(page.text)


def test_a_clients_texts_and_the_typed_code_are_escaped_on_the_device_pages(
    provider: Provider, browser: Browser, http: TestClient
) -> None:
    cli = register(
        provider.registry,
        "hostile-cli",
        public=True,
        redirect_uris=[],
        grant_types=[DEVICE_CODE_GRANT_TYPE],
        spec_fields=HOSTILE,
    )
    started = http.post("/device_authorization", data={"client_id": cli.client_id, "scope": "openid"}).json()
    entry = browser.get("/device")
    typed = '"><script>alert("code")</script>'
    refused = browser.http.post(
        "/device", data={"csrf_token": hidden(entry.text, "csrf_token"), "user_code": typed}
    )
    login = browser.http.post(
        "/device",
        data={"csrf_token": hidden(entry.text, "csrf_token"), "user_code": started["user_code"]},
        follow_redirects=False,
    )
    consent = page_after(browser, browser.login(page_after(browser, login)))

    assert refused.status_code == 400
    assert "<script>" not in refused.text
    assert 'value="&#34;&gt;&lt;script&gt;alert(&#34;code&#34;)&lt;/script&gt;"' in refused.text
    assert_shown_as_text(consent.text)


def test_a_template_escapes_every_value_but_markup_it_rendered_itself() -> None:
    template = PageTemplate('<!-- part content -->\n<p title="$text">$text $markup</p>\n')

    html = template("content", text="a < b & \"c\" 'd'", markup=Html("<b>bold</b>"))

    assert (
        html == '<p title="a &lt; b &amp; &#34;c&#34; &#39;d&#39;">'
        "a &lt; b &amp; &#34;c&#34; &#39;d&#39; <b>bold</b></p>"
    )


def test_a_page_without_a_value_its_template_names_is_an_error_not_an_empty_hole() -> None:
    with pytest.raises(KeyError):
        PageTemplate("<!-- part content -->\n<p>$missing</p>\n")("content")


def test_an_error_page_shows_its_title_message_and_code_as_text() -> None:
    html = Pages(static_prefix="/base").html("error.html", title="<t>", message="<m>", error="<e>")

    assert "<title>&lt;t&gt;</title>" in html
    assert '<link rel="stylesheet" href="/base/static/kubeoidc.css">' in html
    assert '<p class="error" role="alert">&lt;m&gt;</p>' in html
    assert '<p class="error-code">Error code: <code>&lt;e&gt;</code></p>' in html
