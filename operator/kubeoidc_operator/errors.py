"""The errors of the operator's API layer, apart from any client: what the reconciler and the dev mode
catch and raise without importing the Kubernetes client (``kube`` turns the client's errors into these).
"""

from __future__ import annotations


class KubeError(Exception):
    """An API call failed in a way the caller may handle; carries what was being done."""


class NotFound(KubeError):
    """The object does not exist (HTTP 404)."""


class Conflict(KubeError):
    """The object changed or already exists (HTTP 409): read it again and retry."""


class Unavailable(KubeError):
    """The API server did not answer (refused, timed out, cut off) or was not able to (5xx, 429): the
    same call may well succeed in a moment."""


class Refused(KubeError):
    """The API server refused the call for good (e.g. 403 forbidden, 422 invalid): retrying the same
    call changes nothing. ``status`` is the HTTP status."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status
