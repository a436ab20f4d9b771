"""The ``claims`` request parameter (OIDC Core §5.5): individual claims for the ID token and userinfo.

A relying party may ask for claims one by one, for the ID token, for the userinfo response, or both,
each essential or voluntary. The provider releases a requested claim when the user has it; neither kind
is ever a reason to fail (§5.5.1: an essential claim the OP cannot supply is not an error), so the
request reduces to two sets of names. Only claims the provider knows (``claims_supported``) are kept;
``value``/``values`` are accepted and, for ``acr``, answered with the one level there is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: The two members of a claims request (§5.5); any other member is ignored, as the spec asks.
TARGETS = ("id_token", "userinfo")
#: A claims request longer than this is refused (it travels in a URL; bounds the parsing work).
MAX_LENGTH = 4096


class ClaimsRequestError(ValueError):
    """A ``claims`` parameter that is not a JSON object of the shape §5.5 gives."""


@dataclass(frozen=True, slots=True)
class ClaimsRequest:
    """The claim names asked for, per target."""

    id_token: tuple[str, ...] = ()
    userinfo: tuple[str, ...] = ()

    def to_json(self) -> dict[str, list[str]]:
        return {"id_token": list(self.id_token), "userinfo": list(self.userinfo)}

    @classmethod
    def from_json(cls, value: Mapping[str, Any] | None) -> ClaimsRequest:
        if not value:
            return cls()
        return cls(tuple(value.get("id_token", ())), tuple(value.get("userinfo", ())))


def parse_claims_request(text: str | None, supported: frozenset[str]) -> ClaimsRequest:
    """The supported names ``text`` requests; :class:`ClaimsRequestError` if it is malformed."""
    if not text:
        return ClaimsRequest()
    if len(text) > MAX_LENGTH:
        raise ClaimsRequestError(f"The 'claims' parameter is longer than {MAX_LENGTH} characters.")
    try:
        document = json.loads(text)
    except ValueError:
        raise ClaimsRequestError("The 'claims' parameter is not valid JSON.") from None
    if not isinstance(document, dict):
        raise ClaimsRequestError("The 'claims' parameter must be a JSON object.")
    names: dict[str, tuple[str, ...]] = {}
    for target in TARGETS:
        requested = document.get(target)
        if requested is None:
            names[target] = ()
            continue
        if not isinstance(requested, dict):
            raise ClaimsRequestError(f"'claims.{target}' must be a JSON object of claim names.")
        for name, spec in requested.items():
            if spec is not None and not isinstance(spec, dict):
                raise ClaimsRequestError(f"'claims.{target}.{name}' must be null or a JSON object.")
        names[target] = tuple(name for name in requested if name in supported)
    return ClaimsRequest(names["id_token"], names["userinfo"])
