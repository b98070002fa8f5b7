"""The demo's mailbox: emails printed on the console as before, and each kept
as a file in DATA_DIR/mail, so that someone trying Doorkeep reads them on a
page (/demo/mail/) instead of in the server's log.

EMAIL_URL=mailbox: selects it; `doorkeep serve --demo` does when EMAIL_URL is
not set. Production uses a real mail server."""

from __future__ import annotations

import email
import email.policy
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage as ParsedMessage
from email.utils import parsedate_to_datetime
from pathlib import Path

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.console import EmailBackend as ConsoleBackend

SHOWN = 100  # the newest messages the page lists


def mail_dir() -> Path:
    return Path(settings.DATA_DIR) / "mail"


class MailboxBackend(ConsoleBackend):
    """Print each message (as the console backend does) and keep a copy."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        sent = super().send_messages(email_messages)
        folder = mail_dir()
        folder.mkdir(parents=True, exist_ok=True)
        for message in email_messages:
            if not message.recipients():
                continue
            # Named so that the names sort in the order the messages were sent.
            name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.eml"
            (folder / name).write_bytes(message.message().as_bytes(linesep="\n"))
        return sent


@dataclass(frozen=True)
class KeptMessage:
    subject: str
    to: str
    sent_at: datetime
    body: str


def _text_of(message: ParsedMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    return str(part.get_content()) if part is not None else ""


def kept_messages(limit: int = SHOWN) -> list[KeptMessage]:
    """The newest kept messages first."""
    folder = mail_dir()
    if not folder.is_dir():
        return []
    names = sorted((p for p in folder.iterdir() if p.suffix == ".eml"), reverse=True)
    found = []
    for path in names[:limit]:
        parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(parsed, ParsedMessage)
        try:
            sent_at = parsedate_to_datetime(str(parsed["Date"]))
        except (TypeError, ValueError):
            sent_at = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
        found.append(
            KeptMessage(
                subject=str(parsed["Subject"] or ""),
                to=str(parsed["To"] or ""),
                sent_at=sent_at,
                body=_text_of(parsed),
            )
        )
    return found
