"""The API's billing operations."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["billing"])
