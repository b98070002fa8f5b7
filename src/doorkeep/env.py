"""Strict readers for settings that come from environment variables.

Each helper fails loudly (``ImproperlyConfigured``) on a value it cannot
understand, instead of silently falling back to a default. A ``NAME_FILE``
variable, when set, is read instead of ``NAME``: that is how secrets are
passed in from files (Docker and systemd credentials).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str) -> str | None:
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={file_name!r} cannot be read: {exc}") from exc
    return os.environ.get(name)


def env_str(name: str, default: str) -> str:
    value = _raw(name)
    return default if value is None else value


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean; use 1/0, true/false, yes/no")


def env_int(
    name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is below the minimum of {minimum}")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name}={number} is above the maximum of {maximum}")
    return number


def env_seconds(name: str, default: int | None) -> int | None:
    """A duration in whole seconds (0 or more), or ``none`` / ``unlimited`` for None."""
    value = _raw(name)
    if value is None:
        return default
    if value.strip().lower() in {"none", "unlimited"}:
        return None
    try:
        return env_int(name, 0, minimum=0)
    except ImproperlyConfigured as exc:
        raise ImproperlyConfigured(f"{exc} (seconds, or unlimited)") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return default
    items = [item.strip() for item in value.split(",")]
    return [item for item in items if item]


def env_networks(
    name: str, default: list[str]
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Comma-separated IP addresses or CIDR networks (``10.0.0.0/8``, ``::1``)."""
    networks = []
    for item in env_list(name, default):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: {item!r} is not an IP address or a network such as 10.0.0.0/8"
            ) from None
    return tuple(networks)


def env_path(name: str, default: Path) -> Path:
    value = _raw(name)
    return Path(value).expanduser().resolve() if value else default.resolve()


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env_str(name, default).strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is not one of: {', '.join(choices)}")
    return value


def secret_key(data_dir: Path, *, production: bool) -> str:
    """SECRET_KEY from the environment; in development, one generated and kept in the data dir."""
    value = _raw("SECRET_KEY")
    if value:
        if len(value) < 32:
            raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters long")
        return value
    if production:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. In production set SECRET_KEY or SECRET_KEY_FILE."
        )
    key_file = data_dir / "secret_key"
    if key_file.exists():
        return key_file.read_text(encoding="utf-8").strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(50)
    key_file.write_text(value, encoding="utf-8")
    key_file.chmod(0o600)
    return value


def email_settings(url: str) -> dict[str, object]:
    """Translate EMAIL_URL into Django's EMAIL_* settings.

    Supported: ``console:``, ``mailbox:`` (the console, and kept for the demo's
    mailbox page), ``memory:``, ``file:///path``, ``smtp://user:pass@host:port``,
    ``smtp+tls://`` (STARTTLS), ``smtp+ssl://`` (implicit TLS). A ``from`` query
    parameter sets DEFAULT_FROM_EMAIL.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    query = parse_qs(parts.query)
    result: dict[str, object] = {}
    if "from" in query:
        result["DEFAULT_FROM_EMAIL"] = query["from"][0]
    if scheme == "console":
        result["EMAIL_BACKEND"] = "django.core.mail.backends.console.EmailBackend"
    elif scheme == "mailbox":  # the console, and a copy in DATA_DIR/mail (core/mailbox.py)
        result["EMAIL_BACKEND"] = "doorkeep.core.mailbox.MailboxBackend"
    elif scheme == "memory":
        result["EMAIL_BACKEND"] = "django.core.mail.backends.locmem.EmailBackend"
    elif scheme == "file":
        if not parts.path:
            raise ImproperlyConfigured(f"EMAIL_URL={url!r}: a file URL needs a directory path")
        result["EMAIL_BACKEND"] = "django.core.mail.backends.filebased.EmailBackend"
        result["EMAIL_FILE_PATH"] = parts.path
    elif scheme in {"smtp", "smtp+tls", "smtp+ssl"}:
        if not parts.hostname:
            raise ImproperlyConfigured(f"EMAIL_URL={url!r}: an SMTP URL needs a host")
        try:
            port = parts.port
        except ValueError:
            raise ImproperlyConfigured(f"EMAIL_URL={url!r}: the port is not a number") from None
        result.update(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST=parts.hostname,
            EMAIL_PORT=port
            or (465 if scheme == "smtp+ssl" else 587 if scheme == "smtp+tls" else 25),
            EMAIL_HOST_USER=unquote(parts.username or ""),
            EMAIL_HOST_PASSWORD=unquote(parts.password or ""),
            EMAIL_USE_TLS=scheme == "smtp+tls",
            EMAIL_USE_SSL=scheme == "smtp+ssl",
            EMAIL_TIMEOUT=10,
        )
    else:
        raise ImproperlyConfigured(
            f"EMAIL_URL={url!r}: unknown scheme {scheme!r}; "
            "use console:, mailbox:, memory:, file:///dir, smtp://, smtp+tls:// or smtp+ssl://"
        )
    return result


def vapid_keys(data_dir: Path, *, production: bool) -> tuple[str, str] | None:
    """The Web Push (VAPID) key pair as (private, public), both base64url
    without padding: the private key as its raw 32-byte scalar, the public key
    as an uncompressed P-256 point (what browsers take as applicationServerKey).

    From DOORKEEP_VAPID_PRIVATE_KEY (and DOORKEEP_VAPID_PUBLIC_KEY, which must
    match it if given); in development, a pair generated once and kept in the
    data dir. In production without the variable, None: Web Push is off."""
    import base64
    import json

    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def public_of(key: ec.EllipticCurvePrivateKey) -> str:
        return b64(key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))

    private = (_raw("DOORKEEP_VAPID_PRIVATE_KEY") or "").strip()
    if private:
        try:
            raw = base64.urlsafe_b64decode(private + "=" * (-len(private) % 4))
            if len(raw) != 32:
                raise ValueError("not 32 bytes")
            key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
        except ValueError:
            raise ImproperlyConfigured(
                "DOORKEEP_VAPID_PRIVATE_KEY must be a P-256 private key: 32 bytes, base64url"
            ) from None
        public = public_of(key)
        given = (_raw("DOORKEEP_VAPID_PUBLIC_KEY") or "").strip().rstrip("=")
        if given and given != public:
            raise ImproperlyConfigured(
                "DOORKEEP_VAPID_PUBLIC_KEY does not belong to DOORKEEP_VAPID_PRIVATE_KEY; "
                "leave it unset to derive it"
            )
        return private.rstrip("="), public
    if production:
        return None
    key_file = data_dir / "vapid.json"
    if key_file.exists():
        stored = json.loads(key_file.read_text(encoding="utf-8"))
        return str(stored["private_key"]), str(stored["public_key"])
    key = ec.generate_private_key(ec.SECP256R1())
    pair = {"private_key": b64(key.private_numbers().private_value.to_bytes(32, "big"))}
    pair["public_key"] = public_of(key)
    data_dir.mkdir(parents=True, exist_ok=True)
    key_file.write_text(json.dumps(pair), encoding="utf-8")
    key_file.chmod(0o600)
    return pair["private_key"], pair["public_key"]


def encryption_keys(data_dir: Path, *, production: bool) -> list[str]:
    """The keys that encrypt stored secrets (docs/operations.md): Fernet keys
    (32 bytes, urlsafe base64), comma-separated in DOORKEEP_ENCRYPTION_KEYS;
    the first encrypts, every one decrypts. In development without the
    variable, one generated and kept in the data dir."""
    from cryptography.fernet import Fernet

    value = _raw("DOORKEEP_ENCRYPTION_KEYS")
    if value is not None and value.strip():
        keys = [item.strip() for item in value.split(",") if item.strip()]
        for number, key in enumerate(keys, start=1):
            try:
                Fernet(key)
            except ValueError:
                raise ImproperlyConfigured(
                    f"DOORKEEP_ENCRYPTION_KEYS: key {number} is not a Fernet key (32 bytes, "
                    "urlsafe base64); make one with `doorkeep rotate-keys --new-key`"
                ) from None
        if keys:
            return keys
    if production:
        raise ImproperlyConfigured(
            "DOORKEEP_ENCRYPTION_KEYS is not set. In production set DOORKEEP_ENCRYPTION_KEYS "
            "or DOORKEEP_ENCRYPTION_KEYS_FILE (docs/operations.md)."
        )
    key_file = data_dir / "encryption_key"
    if key_file.exists():
        return [key_file.read_text(encoding="utf-8").strip()]
    data_dir.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    key_file.write_text(key, encoding="utf-8")
    key_file.chmod(0o600)
    return [key]
