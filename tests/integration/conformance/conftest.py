"""The certification test plans, a test per module: see ``support.conformance``."""

from __future__ import annotations

from support.conformance import provider, run_plan
from support.node_rp import chromium, node

__all__ = ["chromium", "node", "provider", "run_plan"]
