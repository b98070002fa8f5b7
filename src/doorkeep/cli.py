"""The `doorkeep` command: run and operate the platform.

Each sub-command is thin: it parses its arguments, calls a service, and
prints the result. `doorkeep --help` lists them; `doorkeep CMD --help`
explains one."""

from __future__ import annotations

import argparse
import getpass
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "doorkeep.settings")
    import django

    django.setup()


def _fail(message: str) -> int:
    print(f"doorkeep: {message}", file=sys.stderr)
    return 2


def cmd_migrate(args: argparse.Namespace) -> int:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=1 if args.verbose else 0)
    print("Database is up to date.")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    if args.demo:
        from doorkeep.demo import load_demo

        if load_demo(only_if_empty=True):
            print("Demo data loaded; sign in as owner@demo.doorkeep.test / doorkeep-demo")
    granian = shutil.which("granian") or str(Path(sys.executable).with_name("granian"))
    port = str(args.port)
    print(f"Doorkeep on http://{args.host}:{port}  (data in {settings.DATA_DIR})", flush=True)
    argv = [
        granian,
        "--interface",
        "wsgi",
        "--host",
        args.host,
        "--port",
        port,
        "--workers",
        str(args.workers),
        "--blocking-threads",
        str(args.threads),
        "--no-ws",
        "--log-level",
        "warning",
        "doorkeep.wsgi:application",
    ]
    os.execv(granian, argv)  # noqa: S606 - replaces this process with the server
    return 0  # pragma: no cover


def cmd_createuser(args: argparse.Namespace) -> int:
    from doorkeep.accounts.models import Organization, Role
    from doorkeep.accounts.services import create_organization, create_user
    from doorkeep.core.errors import DomainError

    password = args.password
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif password is None:
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Password (again): "):
            return _fail("the passwords do not match")
    if len(password) < 8:
        return _fail("a password is at least 8 characters")
    try:
        user = create_user(args.email, password, name=args.name or "")
    except DomainError as exc:
        return _fail(exc.message)
    if args.operator:
        platform, _ = Organization.objects.get_or_create(
            is_platform=True, defaults={"name": "Doorkeep platform"}
        )
        platform.memberships.create(user=user, role=Role.PLATFORM_OPERATOR)
        user.is_staff = user.is_superuser = True
        user.save(update_fields=["is_staff", "is_superuser"])
    else:
        create_organization(user, args.organization or user.email.split("@")[0])
    print(f"Created {user.email}" + (" (platform operator)" if args.operator else ""))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from doorkeep.demo import load_demo

    if load_demo(only_if_empty=not args.force):
        print("Demo data loaded. Sign in as owner@demo.doorkeep.test with password doorkeep-demo.")
    else:
        print("Demo data is already there (use --force to add it anyway).")
    return 0


def cmd_locks_add(args: argparse.Namespace) -> int:
    from doorkeep.core.errors import DomainError
    from doorkeep.locks.services import add_manufactured_lock

    serials: list[str] = list(args.serial)
    if args.file:
        with open(args.file, encoding="utf-8") as handle:
            serials += [line.strip() for line in handle if line.strip()]
    if not serials:
        return _fail("name at least one serial number, or --file")
    print("serial,claim_secret")
    status = 0
    for serial in serials:
        try:
            minted = add_manufactured_lock(serial, model_name=args.model or "")
        except DomainError as exc:
            print(f"doorkeep: {serial}: {exc.message}", file=sys.stderr)
            status = 1
            continue
        print(f"{minted.serial},{minted.claim_secret}")
    return status


def cmd_locks_list(args: argparse.Namespace) -> int:
    from doorkeep.locks.models import Lock

    locks = Lock.objects.select_related("organization").order_by("serial")
    if args.unregistered:
        locks = locks.filter(organization__isnull=True)
    for lock in locks:
        owner = lock.organization.name if lock.organization else "-"
        print(f"{lock.serial}\t{owner}\tversion {lock.credential_version}")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from doorkeep.accounts.models import User
    from doorkeep.accounts.services import create_token

    user = User.objects.filter(email=args.email.strip().lower()).first()
    if user is None:
        return _fail(f"no account uses {args.email}")
    _row, token = create_token(user, args.name)
    print(token)
    return 0


def cmd_manage(args: argparse.Namespace) -> int:
    from django.core.management import execute_from_command_line

    execute_from_command_line(["doorkeep manage", *args.rest])
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="doorkeep",
        description="Doorkeep: smart locks, keys and the event log of your buildings.",
        epilog="Settings come from environment variables; see docs/configuration.md.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(
        name: str, func: Callable[[argparse.Namespace], int], help_text: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    p = add("serve", cmd_serve, "Migrate the database and serve the web UI and API.")
    p.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    p.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WEB_WORKERS", "2")),
        help="web worker processes (default 2)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("WEB_THREADS", "4")),
        help="threads per worker (default 4)",
    )
    p.add_argument("--demo", action="store_true", help="load demo data into an empty database")

    p = add("migrate", cmd_migrate, "Create or update the database tables.")
    p.add_argument("-v", "--verbose", action="store_true")

    p = add(
        "createuser", cmd_createuser, "Create an account (its email address counts as verified)."
    )
    p.add_argument("email")
    p.add_argument("--name", help="the person's name")
    p.add_argument("--password", help="the password (prefer --password-stdin)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.add_argument("--organization", help="name of the new account's own organization")
    p.add_argument(
        "--operator",
        action="store_true",
        help="make the account a platform operator (with the admin site)",
    )

    p = add("demo", cmd_demo, "Load demo data: a building with locks, residents, keys and events.")
    p.add_argument("--force", action="store_true", help="load even if the database has data")

    p = add("locks", lambda a: 0, "Operator commands for physical locks.")
    locks_sub = p.add_subparsers(dest="locks_command", metavar="ACTION", required=True)
    q = locks_sub.add_parser(
        "add",
        help="Make manufactured locks known; prints each claim secret.",
        description="Make manufactured locks known to the platform. Prints "
        "serial,claim_secret as CSV: print each secret on the lock's card.",
    )
    q.add_argument("serial", nargs="*", help="serial numbers")
    q.add_argument("--file", help="a file with one serial number per line")
    q.add_argument("--model", help="the lock model")
    q.set_defaults(func=cmd_locks_add)
    q = locks_sub.add_parser("list", help="List known locks and their owners.")
    q.add_argument("--unregistered", action="store_true", help="only locks nobody registered yet")
    q.set_defaults(func=cmd_locks_list)

    p = add("token", cmd_token, "Create an API token for an account and print it (shown once).")
    p.add_argument("email")
    p.add_argument("--name", default="CLI token")

    p = add("manage", cmd_manage, "Run a Django management command (for example: shell, check).")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _setup()
    except Exception as exc:  # a bad setting: say which, not a traceback
        from django.core.exceptions import ImproperlyConfigured

        if isinstance(exc, ImproperlyConfigured):
            return _fail(f"configuration error: {exc}")
        raise
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
