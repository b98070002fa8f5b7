"""The API's laundry machines operations."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["laundry machines"])
