"""The provider's one JSON encoder: compact, UTF-8, the same bytes for the same document."""

from __future__ import annotations

import json
from typing import Any

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dump_json(document: Any) -> bytes:
    return _encoder.encode(document).encode()
