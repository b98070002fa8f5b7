"""The `doorkeep` command: run and operate the platform.

Each sub-command is thin: it parses its arguments, calls a service, and
prints the result. `doorkeep --help` lists them; `doorkeep CMD --help`
explains one."""

from __future__ import annotations

import argparse
import getpass
import os
import shutil
import socket
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
    port = str(settings.PORT)
    print(f"Doorkeep on http://{args.host}:{port}  (data in {settings.DATA_DIR})", flush=True)
    if settings.DOORKEEP_DEMO and settings.EMAIL_BACKEND == "doorkeep.core.mailbox.MailboxBackend":
        print(f"Emails: kept, and readable at {settings.SITE_URL}/demo/mail/", flush=True)
    from doorkeep import supervisor

    children = [
        supervisor.Child(
            "web server",
            web_command(
                host=args.host, port=settings.PORT, workers=args.workers, threads=args.threads
            ),
        )
    ]
    from doorkeep.core.memory import FREEZE_ENV
    from doorkeep.core.metrics import fresh_multiprocess_dir

    # The web workers count their metrics in files of one folder, which a
    # scrape of any of them adds up (core/metrics.py); emptied at each start.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(fresh_multiprocess_dir(settings.DATA_DIR))

    os.environ[FREEZE_ENV] = "1"  # the web workers freeze what they loaded (core/memory.py)
    if not args.no_gateway:
        doorkeep = shutil.which("doorkeep") or str(Path(sys.executable).with_name("doorkeep"))
        children.append(
            supervisor.Child(
                "gateway",
                [
                    doorkeep,
                    "gateway",
                    "--host",
                    settings.GATEWAY_HOST,
                    "--port",
                    str(settings.GATEWAY_PORT),
                    # The same id after a restart: the new gateway takes over
                    # what the one that died left recorded under it.
                    "--id",
                    f"{socket.gethostname()}-{settings.GATEWAY_PORT}",
                ],
            )
        )
        print(f"Device gateway on ws://{settings.GATEWAY_HOST}:{settings.GATEWAY_PORT}", flush=True)
    from doorkeep import serving

    serving.note(web_host=args.host, gateway=not args.no_gateway)  # for the simulators
    try:
        return supervisor.supervise(
            children,
            supervisor.Jobs(hourly=args.reminder_interval, outbox=args.outbox_interval),
        )
    finally:
        serving.forget()


def web_command(*, host: str, port: int, workers: int, threads: int) -> list[str]:
    """How serve runs the web server: granian, WSGI, ``workers`` processes of
    ``threads`` threads (the systemd unit of docs/operations.md is the same)."""
    granian = shutil.which("granian") or str(Path(sys.executable).with_name("granian"))
    return [
        granian,
        "--interface",
        "wsgi",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--blocking-threads",
        str(threads),
        "--no-ws",
        "--log-level",
        "warning",
        "doorkeep.wsgi:application",
    ]


def cmd_jobs(args: argparse.Namespace) -> int:
    from doorkeep import supervisor

    if args.once:
        done = supervisor.Jobs(hourly=1, outbox=1).run_due()
        return 0 if done else 1
    print("Doorkeep jobs running (Ctrl-C stops them)", flush=True)
    return supervisor.supervise(
        [], supervisor.Jobs(hourly=args.reminder_interval, outbox=args.outbox_interval)
    )


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
    from doorkeep.core.errors import DomainError
    from doorkeep.demo import load_demo

    try:
        loaded = load_demo(only_if_empty=not args.force)
    except DomainError as exc:
        return _fail(f"the demo cannot be added to this database: {exc.message}")
    if loaded:
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


def cmd_codes_generate(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from doorkeep.core.errors import DomainError
    from doorkeep.licensing.services import generate_batch

    expires = None
    if args.expires:
        try:
            expires = datetime.fromisoformat(args.expires)
        except ValueError:
            return _fail(f"--expires {args.expires!r} is not a date like 2027-12-31")
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
    try:
        batch, plain = generate_batch(
            None, args.product, args.count, expires_at=expires, note=args.note or ""
        )
    except DomainError as exc:
        return _fail(exc.message)
    print(
        f"# batch {batch.pk}: {batch.size} x {batch.product.sku} ({batch.product.name})"
        + (f", expires {expires:%Y-%m-%d}" if expires else ""),
        file=sys.stderr,
    )
    print("# these codes are shown once; only their digests are stored", file=sys.stderr)
    for code in plain:
        print(code)
    return 0


def cmd_codes_products(args: argparse.Namespace) -> int:
    from doorkeep.licensing.models import Product

    for product in Product.objects.filter(active=True):
        grants = (
            f"{product.years} years"
            if product.years
            else (f"{product.keys} keys" if product.keys else "account upgrade")
        )
        print(f"{product.sku}\t{grants}\t{product.name}")
    return 0


def cmd_codes_batches(args: argparse.Namespace) -> int:
    from django.db.models import Count, Q

    from doorkeep.licensing.models import CodeBatch

    batches = CodeBatch.objects.select_related("product").annotate(
        used=Count("codes", filter=Q(codes__redeemed_at__isnull=False))
    )
    for batch in batches:
        expiry = f"{batch.expires_at:%Y-%m-%d}" if batch.expires_at else "-"
        print(
            f"{batch.pk}\t{batch.product.sku}\t{batch.used}/{batch.size} used\t"
            f"expires {expiry}\t{batch.created_at:%Y-%m-%d}\t{batch.note}"
        )
    return 0


def cmd_events_purge(args: argparse.Namespace) -> int:
    from doorkeep.events.retention import purge

    if args.days is not None and args.days < 1:
        return _fail("--days must be at least 1")
    result = purge(days=args.days, dry_run=args.dry_run)
    if result.cutoff is None:
        print("Retention is off (DOORKEEP_EVENT_RETENTION_DAYS=0): nothing removed.")
        return 0
    verb = "Would remove" if args.dry_run else "Removed"
    print(
        f"{verb} {result.deleted} event(s) that happened before {result.cutoff:%Y-%m-%d %H:%M} UTC."
    )
    return 0


def cmd_reminders(args: argparse.Namespace) -> int:
    from doorkeep.billing.runs import send_reminders as invoice_reminders
    from doorkeep.licensing.services import send_reminders

    sent = send_reminders()
    print(f"Sent {sent} reminder(s).")
    reminded = invoice_reminders()
    print(f"Sent {reminded} invoice reminder(s).")
    return 0


def cmd_outbox(args: argparse.Namespace) -> int:
    import time

    from doorkeep.notify.outbox import deliver_due

    while True:
        attempted = deliver_due(limit=args.limit)
        if not args.loop:
            print(f"Attempted {attempted} message(s).")
            return 0
        if attempted < args.limit:
            time.sleep(args.interval)


def cmd_gateway(args: argparse.Namespace) -> int:
    from django.conf import settings

    from doorkeep.gateway.server import run

    port = settings.GATEWAY_PORT if args.port is None else args.port
    print(f"Doorkeep gateway on ws://{args.host}:{port}", flush=True)
    run(
        args.host,
        port,
        gateway_id=args.id,
        public_url=args.internal_url or settings.GATEWAY_PUBLIC_URL or None,
        db_threads=args.db_threads,
    )
    return 0


def cmd_simulate_lock(args: argparse.Namespace) -> int:
    import asyncio

    from doorkeep import serving
    from doorkeep.gateway.simulator import GIVE_UP_CODES, SimulatedLock, interactive

    url = serving.gateway_url(args.url)
    lock = SimulatedLock(
        url, args.serial.upper(), args.secret, on_event=lambda text: print(text, flush=True)
    )

    async def main() -> None:
        loop = asyncio.get_running_loop()

        async def read_line() -> str | None:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            return line if line else None

        await interactive(lock, read_line)

    try:
        asyncio.run(main())
    except (OSError, TimeoutError) as exc:
        return _fail(f"cannot reach the gateway at {url}: {exc}")
    except KeyboardInterrupt:
        pass
    if lock.close_code in GIVE_UP_CODES:  # it stopped reconnecting
        return _fail(f"the gateway refused the lock: {lock.close_reason} ({lock.close_code})")
    return 0


def cmd_simulate_charger(args: argparse.Namespace) -> int:
    import asyncio

    from doorkeep import serving
    from doorkeep.gateway.ocpp.simulator import SimulatedCharger, StationRefused, interactive

    if args.power < 0:
        return _fail("the power is not negative")
    if args.meter_interval <= 0:
        return _fail("the meter interval is a number of seconds above 0")
    url = serving.gateway_url(args.url)
    charger = SimulatedCharger(
        url,
        args.charge_point_id,
        args.password,
        ocpp=args.ocpp,
        power_kw=args.power,
        meter_interval=args.meter_interval,
        on_event=lambda text: print(text, flush=True),
    )

    async def main() -> None:
        loop = asyncio.get_running_loop()

        async def read_line() -> str | None:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            return line if line else None

        try:
            await interactive(charger, read_line)
        finally:
            await charger.close()

    try:
        asyncio.run(main())
    except StationRefused as exc:
        return _fail(str(exc))
    except (OSError, TimeoutError) as exc:
        return _fail(f"cannot reach the gateway at {url}: {exc}")
    except KeyboardInterrupt:
        pass
    return 0


def cmd_simulate_machine(args: argparse.Namespace) -> int:
    import asyncio

    from doorkeep import serving
    from doorkeep.gateway.laundry.simulator import SimulatedMachine, interactive

    if args.cycle_seconds <= 0:
        return _fail("a cycle lasts a number of seconds above 0")
    url = serving.gateway_url(args.url)
    machine = SimulatedMachine(
        url,
        args.serial.upper(),
        args.secret,
        on_event=lambda text: print(text, flush=True),
        machine=args.kind,
        cycle_seconds=args.cycle_seconds,
    )

    async def main() -> None:
        loop = asyncio.get_running_loop()

        async def read_line() -> str | None:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            return line if line else None

        await interactive(machine, read_line)

    try:
        asyncio.run(main())
    except (OSError, TimeoutError) as exc:
        return _fail(f"cannot reach the gateway at {url}: {exc}")
    except KeyboardInterrupt:
        pass
    if machine.close_code and machine.close_code >= 4000:
        return _fail(
            f"the gateway refused the machine: {machine.close_reason} ({machine.close_code})"
        )
    return 0


def cmd_simulate_panel(args: argparse.Namespace) -> int:
    import time

    from doorkeep import serving
    from doorkeep.guests import simulator

    try:
        if args.secret or args.meta_key or args.file_key:
            panel = simulator.by_hand(
                panel_id=args.panel,
                entry_id=args.entry,
                secret=args.secret,
                meta_key=args.meta_key,
                file_key=args.file_key,
                uid=args.uid,
            )
        elif args.panel_id is not None:
            panel = simulator.from_database(args.panel_id)
        else:
            return _fail("give the panel's id, or --secret with --entry and --panel")
    except simulator.PanelUnavailable as exc:
        return _fail(str(exc))
    if args.counter is not None:
        if not 0 <= args.counter < 0xFFFFFF:
            return _fail("the counter is a number from 0 to 16777214")
        panel.counter = args.counter
    base = serving.site_url(args.base_url)
    try:
        if panel.is_tag:
            print(panel.tap(base), flush=True)
            while not args.once:
                print("(Enter: tap again; Ctrl-D: stop)", flush=True)
                if not sys.stdin.readline():
                    break
                print(panel.tap(base), flush=True)
            return 0
        while True:
            line, left = panel.show(base)
            print(line, flush=True)
            if args.once:
                return 0
            time.sleep(left + 0.05)
    except KeyboardInterrupt:
        return 0


def cmd_rotate_keys(args: argparse.Namespace) -> int:
    from doorkeep.core import crypto

    if args.new_key:
        print(crypto.new_key())
        return 0
    try:
        done = crypto.rotate()
    except crypto.SecretUnreadable as exc:
        return _fail(str(exc))
    for label, count in done.items():
        print(f"{label}: {count} row(s) re-encrypted")
    print(
        "Every stored secret is encrypted with the first key of DOORKEEP_ENCRYPTION_KEYS; "
        "the other keys can be removed now."
    )
    return 0


def cmd_manage(args: argparse.Namespace) -> int:
    from django.core.management import execute_from_command_line

    execute_from_command_line(["doorkeep manage", *args.rest])
    return 0


def add_job_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--reminder-interval",
        type=int,
        default=3600,
        metavar="SECONDS",
        help="how often to send due reminders, report expired invitations, purge old events "
        "and run billing (default 3600; 0: never)",
    )
    p.add_argument(
        "--outbox-interval",
        type=int,
        default=5,
        metavar="SECONDS",
        help="how often to deliver due notifications and webhooks (default 5; 0: never)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="doorkeep",
        description="Doorkeep: smart locks, keys and the event log of your buildings.",
        epilog="Settings come from environment variables; see docs/operations.md.",
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
    p.add_argument("--port", type=int, help="default: PORT, else 8000")
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
    p.add_argument(
        "--demo",
        action="store_true",
        help="load demo data into an empty database; demo mode: the sign-in page lists the "
        "demo logins, emails are kept for /demo/mail/ (not in production)",
    )
    p.add_argument(
        "--no-gateway",
        action="store_true",
        help="do not start the device gateway (run `doorkeep gateway` elsewhere)",
    )
    add_job_options(p)

    p = add(
        "jobs",
        cmd_jobs,
        "Run the periodic jobs `doorkeep serve` runs (reminders, expired invitations, old "
        "events, billing runs, notifications) without serving: for systemd.",
    )
    add_job_options(p)
    p.add_argument("--once", action="store_true", help="run every job once and stop")

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

    p = add("events", lambda a: 0, "Operator commands for the event log.")
    events_sub = p.add_subparsers(dest="events_command", metavar="ACTION", required=True)
    q = events_sub.add_parser(
        "purge",
        help="Remove events older than the retention period.",
        description="Remove the events that happened more than DOORKEEP_EVENT_RETENTION_DAYS "
        "days ago (default 730). `doorkeep serve` does this hourly.",
    )
    q.add_argument("--days", type=int, help="keep this many days instead of the setting")
    q.add_argument("--dry-run", action="store_true", help="count, remove nothing")
    q.set_defaults(func=cmd_events_purge)

    p = add("codes", lambda a: 0, "Operator commands for prepaid codes.")
    codes_sub = p.add_subparsers(dest="codes_command", metavar="ACTION", required=True)
    q = codes_sub.add_parser(
        "generate",
        help="Generate a batch of prepaid codes for a product; prints them once.",
        description="Generate a batch of prepaid codes for a product. The codes are printed "
        "once, one a line; only their digests are stored.",
    )
    q.add_argument("product", help="the product's article code, see `doorkeep codes products`")
    q.add_argument("count", type=int, help="how many codes (1 to 10,000)")
    q.add_argument("--expires", help="last day the codes can be used, e.g. 2027-12-31")
    q.add_argument("--note", help="what the batch is for (a reseller, an order number)")
    q.set_defaults(func=cmd_codes_generate)
    q = codes_sub.add_parser("products", help="List the products a code can grant.")
    q.set_defaults(func=cmd_codes_products)
    q = codes_sub.add_parser("batches", help="List code batches and how many codes were used.")
    q.set_defaults(func=cmd_codes_batches)

    add(
        "reminders",
        cmd_reminders,
        "Email lock owners whose locks' management ends in 28, 7 or 1 days (once each). "
        "`doorkeep serve` does this every hour by itself.",
    )

    p = add(
        "outbox",
        cmd_outbox,
        "Deliver due notifications: Web Push, email, webhooks (`doorkeep serve` does this "
        "every few seconds by itself).",
    )
    p.add_argument("--loop", action="store_true", help="keep delivering until stopped")
    p.add_argument("--interval", type=float, default=5, help="seconds between rounds with --loop")
    p.add_argument("--limit", type=int, default=100, help="messages per round (default 100)")

    p = add(
        "gateway",
        cmd_gateway,
        "Run the device gateway: the locks' WebSocket connections (serve starts one too).",
    )
    p.add_argument("--host", default=os.environ.get("GATEWAY_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, help="default: GATEWAY_PORT, else the web port + 1")
    p.add_argument("--id", help="a name for this gateway (default: host, pid and a random tag)")
    p.add_argument("--internal-url", help="the URL web workers use to reach this gateway")
    p.add_argument(
        "--db-threads",
        type=int,
        default=int(os.environ.get("GATEWAY_DB_THREADS", "4")),
        help="threads for the gateway's database work (default 4, GATEWAY_DB_THREADS)",
    )

    p = add("simulate", lambda a: 0, "Simulated devices, for trying and testing.")
    sim_sub = p.add_subparsers(dest="simulate_command", metavar="DEVICE", required=True)
    q = sim_sub.add_parser(
        "lock",
        help="A lock that connects, keeps its list and decides by itself.",
        description="Connect a simulated lock to the gateway. Then type: pin 1234 | tag 04A22B1C "
        "| fob FOB-1 | status | time | offline | online | list | quit. Remote unlocks print OPEN. "
        "A lost connection is retried with a growing pause (1 s, 2 s, 4 s ... up to a minute), "
        "as the protocol asks of real locks; 'offline' stops that until 'online'.",
    )
    q.add_argument("serial", help="the lock's serial number")
    q.add_argument("--secret", required=True, help="the lock's device secret")
    q.add_argument(
        "--url",
        help="the gateway (default: GATEWAY_URL, else ws://127.0.0.1:GATEWAY_PORT, 8001)",
    )
    q.set_defaults(func=cmd_simulate_lock)
    q = sim_sub.add_parser(
        "charger",
        help="A charging station (OCPP 1.6J or 2.0.1) that charges, queues offline, "
        "and keeps its list.",
        description="Connect a simulated charging station to the gateway (ws://…/ocpp/CP_ID, "
        "HTTP Basic authentication). Then type: tag UID | stop | power KW | offline | online "
        "| status | list | help | quit.",
    )
    q.add_argument("charge_point_id", metavar="CP_ID", help="the station's charge point id")
    q.add_argument("--password", required=True, help="the station's password")
    q.add_argument("--ocpp", choices=("1.6", "2.0.1"), required=True, help="the OCPP version")
    q.add_argument(
        "--url",
        help="the gateway (default: GATEWAY_URL, else ws://127.0.0.1:GATEWAY_PORT, 8001)",
    )
    q.add_argument("--power", type=float, default=11.0, help="charging power in kW (default 11)")
    q.add_argument(
        "--meter-interval",
        type=float,
        default=10.0,
        help="seconds between meter values while charging (default 10)",
    )
    q.set_defaults(func=cmd_simulate_charger)
    q = sim_sub.add_parser(
        "machine",
        help="A laundry machine (washer or dryer) that keeps its list of badges, runs cycles, "
        "and keeps them while offline.",
        description="Connect a simulated laundry machine to the gateway (the lock protocol, "
        "kind laundry). Then type: badge UID [PROGRAM] | programs | out-of-order | repair | end "
        "| offline | online | list | quit. A start from the portal runs a cycle too.",
    )
    q.add_argument("serial", help="the machine controller's serial number")
    q.add_argument("--secret", required=True, help="the machine's device secret")
    q.add_argument(
        "--url",
        help="the gateway (default: GATEWAY_URL, else ws://127.0.0.1:GATEWAY_PORT, 8001)",
    )
    q.add_argument(
        "--kind", choices=("washer", "dryer"), default="washer", help="its programs (washer)"
    )
    q.add_argument(
        "--cycle-seconds",
        type=float,
        default=8.0,
        help="how long a simulated cycle runs (default 8 seconds)",
    )
    q.set_defaults(func=cmd_simulate_machine)
    q = sim_sub.add_parser(
        "panel",
        help="An entry panel: prints the code it shows and the URL in its NFC tag.",
        description="Show what an entry panel shows: a 6-digit code that changes every step "
        "(RFC 6238), and the URL its NFC tag holds; for an NTAG 424 DNA panel, the URL its tag "
        "gives at each tap (press Enter for the next). Give the panel's id (its secrets are "
        "read from the database), or --secret, --entry and --panel for a code panel configured "
        "by hand, --meta-key, --file-key and --panel for a tag.",
    )
    q.add_argument("panel_id", nargs="?", type=int, help="the panel's id (on the Guests page)")
    q.add_argument("--secret", help="the panel's base32 secret (instead of reading it)")
    q.add_argument("--entry", type=int, help="the entry's id, with --secret")
    q.add_argument("--panel", type=int, help="the panel's id, with --secret")
    q.add_argument("--meta-key", help="an NTAG 424 DNA panel's SDM meta read key (hex)")
    q.add_argument("--file-key", help="an NTAG 424 DNA panel's SDM file read key (hex)")
    q.add_argument("--uid", help="the simulated tag's 7-byte UID (hex), with --meta-key")
    q.add_argument(
        "--counter",
        type=int,
        help="an NTAG 424 DNA tag's counter before the first tap (default: the newest one "
        "the platform saw, 0 for a tag configured by hand)",
    )
    q.add_argument(
        "--once", action="store_true", help="print the current code (or one tap) and stop"
    )
    q.add_argument(
        "--base-url",
        help="the platform's address (default: where `doorkeep serve` runs from this data "
        "directory, else SITE_URL)",
    )
    q.set_defaults(func=cmd_simulate_panel)

    p = add(
        "rotate-keys",
        cmd_rotate_keys,
        "Re-encrypt every stored secret (panel seeds and tag keys, webhook signing secrets) "
        "with the first key of DOORKEEP_ENCRYPTION_KEYS (docs/operations.md).",
    )
    p.add_argument(
        "--new-key", action="store_true", help="print a new key to put first, change nothing"
    )

    p = add("token", cmd_token, "Create an API token for an account and print it (shown once).")
    p.add_argument("email")
    p.add_argument("--name", default="CLI token")

    p = add("manage", cmd_manage, "Run a Django management command (for example: shell, check).")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.func is cmd_serve and args.port is not None:
        # Before the settings are read: SITE_URL and GATEWAY_PORT follow it,
        # here and in the processes serve starts.
        os.environ["PORT"] = str(args.port)
    if args.func is cmd_gateway:
        # A gateway's metrics are its own (gateway/metrics.py), never added
        # to the web workers' (core/metrics.py): before prometheus-client loads.
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if args.func is cmd_serve and args.demo:
        # Demo mode, here and in the processes serve starts: the sign-in page
        # lists the demo logins, emails are kept for /demo/mail/ (settings.py).
        os.environ["DOORKEEP_DEMO"] = "true"
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
