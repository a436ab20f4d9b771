"""Why a Kubernetes API server refused a request, in its own words: the ``message`` of its ``Status``
answer. The operator's and the provider's API clients both report it; neither quotes the request, which
may carry a secret."""

from __future__ import annotations

import json


def status_message(body: bytes) -> str | None:
    """The ``message`` of a ``Status`` answer; None when the body is not one, or holds no message."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    message = document.get("message") if isinstance(document, dict) else None
    return message if isinstance(message, str) and message else None
