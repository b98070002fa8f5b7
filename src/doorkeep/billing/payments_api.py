"""The API's payments operations."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["payments"])
