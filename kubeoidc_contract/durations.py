"""The one duration grammar: whole numbers with a unit, run together (``0s``, ``10m``, ``1h30m``, ``30d``).

Go's ``time.ParseDuration`` without fractions or signs. Where a duration is a field of the OIDCClient
(``spec.secretRotation.gracePeriod``) the CRD allows hours, minutes and seconds, as a Kubernetes
``metav1.Duration`` does; the operator's settings also take days (``30d``), as the chart's values do.
The CRD's pattern is :func:`duration_pattern`'s, the chart's schema pattern accepts the same strings,
and its ``kubeoidc.seconds`` helper reads them as :func:`parse_duration` does: tests hold them to it,
since YAML and Helm templates cannot import it.
"""

from __future__ import annotations

import datetime
import re
from typing import Final

#: Seconds per unit; a grammar's unit set is a subset, in this order.
UNITS: Final = {"d": 86400, "h": 3600, "m": 60, "s": 1}
#: The units of a duration in the OIDCClient spec (what the CRD's pattern allows).
SPEC_UNITS: Final = "hms"


def duration_pattern(units: str = SPEC_UNITS) -> str:
    """The regular expression of a duration in ``units`` (the CRD's ``pattern`` for a spec field)."""
    return f"^([0-9]+({'|'.join(units)}))+$"


def parse_duration(text: str, units: str = SPEC_UNITS) -> datetime.timedelta:
    """A duration such as ``0s``, ``10m``, ``24h`` or ``1h30m`` (and ``30d`` when ``units`` has ``d``)."""
    if not re.fullmatch(duration_pattern(units), text):
        examples = "0s, 10m, 24h, 1h30m or 30d" if "d" in units else "0s, 10m, 24h or 1h30m"
        raise ValueError(f"{text!r} is not a duration such as {examples}")
    seconds = sum(int(amount) * UNITS[unit] for amount, unit in re.findall(r"([0-9]+)([a-z])", text))
    return datetime.timedelta(seconds=seconds)
