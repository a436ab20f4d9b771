"""Subjects (``sub``) for people from identity sources: stable, and never shared with anyone else.

A source's subject is ``<source name>|<hash>``, where the hash (SHA-256, base64url) covers the source's
own stable identifier of the person (the upstream ``iss`` and ``sub``; the LDAP ``entryUUID``). So:
- two sources never produce the same subject (the name differs before the ``|``), even for the same
  upstream identifier;
- a static user's ``id`` cannot contain ``|`` (the users file refuses it), nor can a client ID (the
  CRD's pattern), so no source subject equals a static user's or a client's;
- the subject does not reveal the upstream identifier, and stays the same at every sign-in. Renaming
  the IdentitySource changes its people's subjects: keep its name.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Final

SEPARATOR: Final = "|"


def source_subject(source: str, stable_id: str) -> str:
    """The local ``sub`` of the person ``stable_id`` of the source named ``source``."""
    digest = hashlib.sha256(stable_id.encode("utf-8")).digest()
    return f"{source}{SEPARATOR}{base64.urlsafe_b64encode(digest).rstrip(b'=').decode('ascii')}"


def source_of(subject: str) -> str | None:
    """The source a subject came from, or ``None`` for a static user's or a client's subject."""
    source, separator, _ = subject.partition(SEPARATOR)
    return source if separator else None
