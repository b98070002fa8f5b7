"""The API's consumption operations."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["consumption"])
