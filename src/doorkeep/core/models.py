from __future__ import annotations

from django.db import models


class RateLimitBucket(models.Model):
    """A fixed-window counter for one rate-limited key (see core.ratelimit)."""

    key = models.CharField(max_length=200, unique=True)
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.key}: {self.count}"
