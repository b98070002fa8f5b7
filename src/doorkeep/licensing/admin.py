import csv
import io
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from doorkeep.licensing.models import CodeBatch, KeyAllotment, Period, PrepaidCode, Product
from doorkeep.licensing.services import generate_batch


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["sku", "name", "kind", "years", "keys", "active"]


class NewBatchForm(forms.ModelForm):
    class Meta:
        model = CodeBatch
        fields = ["product", "size", "expires_at", "note"]


@admin.register(CodeBatch)
class CodeBatchAdmin(admin.ModelAdmin):
    """Adding a batch generates its codes and downloads them as CSV, once:
    only their digests are stored."""

    list_display = ["id", "product", "size", "expires_at", "created_at", "created_by", "note"]
    form = NewBatchForm

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: CodeBatch, form: Any, change: bool) -> None:
        batch, plain = generate_batch(
            None, obj.product.sku, obj.size, expires_at=obj.expires_at, note=obj.note
        )
        batch.created_by = request.user  # type: ignore[assignment]
        batch.save(update_fields=["created_by"])
        obj.pk = batch.pk
        request._doorkeep_codes = plain  # type: ignore[attr-defined]

    def response_add(
        self, request: HttpRequest, obj: CodeBatch, post_url_continue: Any = None
    ) -> HttpResponse:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["code", "product", "batch", "expires"])
        expires = f"{obj.expires_at:%Y-%m-%d}" if obj.expires_at else ""
        for code in getattr(request, "_doorkeep_codes", []):
            writer.writerow([code, obj.product.sku, obj.pk, expires])
        response = HttpResponse(buffer.getvalue(), content_type="text/csv")
        response["Content-Disposition"] = (
            f'attachment; filename="doorkeep-codes-batch-{obj.pk}.csv"'
        )
        response["Cache-Control"] = "no-store"
        return response


@admin.register(PrepaidCode)
class PrepaidCodeAdmin(admin.ModelAdmin):
    list_display = ["id", "batch", "redeemed_at", "redeemed_by", "lock", "organization"]
    list_filter = ["batch__product"]
    readonly_fields = ["digest", "batch", "redeemed_at", "redeemed_by", "lock", "organization"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Period)
class PeriodAdmin(admin.ModelAdmin):
    list_display = ["lock", "kind", "starts_at", "ends_at", "code"]
    list_filter = ["kind"]
    search_fields = ["lock__serial"]


@admin.register(KeyAllotment)
class KeyAllotmentAdmin(admin.ModelAdmin):
    list_display = ["lock", "keys", "included", "code", "created_at"]
    search_fields = ["lock__serial"]
