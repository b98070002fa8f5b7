"""How a web worker reaches the gateway that holds a lock's connection.

- ``direct`` (default, no extra service): each gateway records its internal
  URL on the lock's Device row when the lock connects; a web worker calls
  that URL. Works across machines as long as gateways are reachable.
- ``redis``: gateways register the locks they hold in Redis and listen on
  their own channel; web workers publish commands there and wait for the reply
  on a list. Select with DOORKEEP_GATEWAY_ROUTING=redis and REDIS_URL.

Both give the same answers: ok, or a LockOffline / LockTimeout / LockRefused
domain error. A gateway asked to unlock a lock another gateway holds forwards
the command the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.conf import settings
from django.utils.translation import gettext as _

from doorkeep.core.errors import DomainError
from doorkeep.gateway.models import Device

if TYPE_CHECKING:
    from doorkeep.gateway.server import Gateway
    from doorkeep.gateway.services import Holder

log = logging.getLogger("doorkeep.gateway")

MAX_UNLOCK_TIMEOUT = 30.0  # seconds; longer requests are cut to this


class LockOffline(DomainError):
    status = 503
    code = "lock_offline"


class LockTimeout(DomainError):
    status = 504
    code = "lock_timeout"


class LockRefused(DomainError):
    status = 409
    code = "lock_refused"


def _backend() -> str:
    return str(getattr(settings, "DOORKEEP_GATEWAY_ROUTING", "direct"))


def _prefix() -> str:
    """The start of every Redis key and channel name (one Redis can serve
    several installations, or test runs, side by side)."""
    return str(getattr(settings, "DOORKEEP_GATEWAY_REDIS_PREFIX", "doorkeep"))


def lock_key(lock_id: int) -> str:
    return f"{_prefix()}:lock:{lock_id}"


def gateway_channel(gateway_id: str) -> str:
    return f"{_prefix()}:gateway:{gateway_id}"


def _redis() -> Any:
    import redis

    # Longer than the longest unlock wait, which blocks on BLPOP.
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=MAX_UNLOCK_TIMEOUT + 5, socket_connect_timeout=3
    )


_redis_client: Any = None


def _client() -> Any:
    global _redis_client
    if _redis_client is None:
        _redis_client = _redis()
    return _redis_client


def _answer(result: dict[str, Any]) -> dict[str, Any]:
    if result.get("ok"):
        return result
    error = result.get("error")
    if error == "timeout":
        raise LockTimeout(_("The lock did not answer in time. Try again, or check the lock."))
    if error == "refused":
        raise LockRefused(
            _("The lock refused to open: %(reason)s") % {"reason": result.get("reason") or "?"}
        )
    raise LockOffline(_("The lock is offline: it is not connected to the platform right now."))


def internal_base(url: str) -> str:
    """The HTTP base of a gateway's internal URL (a ws:// or wss:// address
    given by mistake is the same host and port)."""
    url = url.rstrip("/")
    if url.startswith("ws://"):
        return "http://" + url[len("ws://") :]
    if url.startswith("wss://"):
        return "https://" + url[len("wss://") :]
    return url


def clamp_timeout(timeout: float) -> float:
    if timeout != timeout or timeout <= 0:  # NaN or not positive
        return 1.0
    return min(float(timeout), MAX_UNLOCK_TIMEOUT)


def send_unlock(lock_id: int, request_id: str, *, timeout: float) -> dict[str, Any]:
    """Ask the lock to open; returns when it acknowledged. Raises LockOffline,
    LockTimeout or LockRefused."""
    return _answer(deliver_unlock(lock_id, request_id, timeout))


def deliver_unlock(
    lock_id: int, request_id: str, timeout: float, *, not_via: str = ""
) -> dict[str, Any]:
    """The raw answer of the gateway holding the lock: {"ok": true} or
    {"ok": false, "error": "offline" | "timeout" | "refused", ...}. ``not_via``
    names a gateway that must not be asked (the one forwarding)."""
    timeout = clamp_timeout(timeout)
    if _backend() == "redis":
        try:
            return _redis_unlock(lock_id, request_id, timeout, not_via=not_via)
        except Exception as exc:  # Redis down or unreachable: nobody can reach the lock
            log.warning("cannot route the unlock of lock %s through Redis: %s", lock_id, exc)
            return {"ok": False, "error": "offline"}
    from doorkeep.gateway.server import internal_token

    holder = (
        Device.objects.filter(lock_id=lock_id, online=True)
        .values_list("gateway", "gateway_url")
        .first()
    )
    if not holder or not holder[1] or holder[0] == not_via:
        return {"ok": False, "error": "offline"}
    request = urllib.request.Request(  # noqa: S310 - the gateway's own http URL
        f"{internal_base(holder[1])}/internal/unlock?"
        + urlencode({"lock": lock_id, "request": request_id, "timeout": timeout}),
        headers={"X-Doorkeep-Internal": internal_token()},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout + 2) as response:  # noqa: S310
            result: dict[str, Any] = json.loads(response.read())
            return result
    except TimeoutError:
        return {"ok": False, "error": "timeout"}
    except (urllib.error.URLError, OSError, ValueError) as exc:
        log.info("gateway %s did not take the unlock of lock %s: %s", holder[0], lock_id, exc)
        return {"ok": False, "error": "offline"}


def notify_changed(lock_id: int) -> None:
    """Tell the gateway holding the lock that its list changed (after commit).
    Best effort: gateways also poll, so a lost notice only delays the push."""
    try:
        if _backend() == "redis":
            client = _client()
            gateway = client.get(lock_key(lock_id))
            if gateway:
                client.publish(
                    gateway_channel(gateway.decode()),
                    json.dumps({"op": "changed", "lock": lock_id}),
                )
            return
        from doorkeep.gateway.server import internal_token

        url = (
            Device.objects.filter(lock_id=lock_id, online=True)
            .values_list("gateway_url", flat=True)
            .first()
        )
        if url:
            request = urllib.request.Request(  # noqa: S310 - the gateway's own http URL
                f"{internal_base(url)}/internal/changed?lock={lock_id}",
                headers={"X-Doorkeep-Internal": internal_token()},
            )
            with urllib.request.urlopen(request, timeout=2):  # noqa: S310
                pass
    except Exception as exc:
        log.info("could not notify the gateway of a change to lock %s: %s", lock_id, exc)


def _redis_unlock(
    lock_id: int, request_id: str, timeout: float, *, not_via: str = ""
) -> dict[str, Any]:
    client = _client()
    gateway = client.get(lock_key(lock_id))
    if not gateway or gateway.decode() == not_via:
        return {"ok": False, "error": "offline"}
    reply = f"{_prefix()}:reply:{request_id}"
    receivers = client.publish(
        gateway_channel(gateway.decode()),
        json.dumps(
            {
                "op": "unlock",
                "lock": lock_id,
                "request": request_id,
                "timeout": timeout,
                "reply": reply,
            }
        ),
    )
    if not receivers:  # registered, but that gateway is gone (it crashed)
        return {"ok": False, "error": "offline"}
    answer = client.blpop([reply], timeout=timeout + 1)
    if answer is None:
        return {"ok": False, "error": "timeout"}
    result: dict[str, Any] = json.loads(answer[1])
    return result


def _drop_url(holder: Holder, lock_id: int, before: float) -> None:
    from doorkeep.gateway.server import internal_token

    request = urllib.request.Request(  # noqa: S310 - the gateway's own http URL
        f"{internal_base(holder.url)}/internal/drop?lock={lock_id}&before={before}",
        headers={"X-Doorkeep-Internal": internal_token()},
    )
    with urllib.request.urlopen(request, timeout=2):  # noqa: S310
        pass


# --- the gateway's side ---------------------------------------------------------------


class DirectSide:
    """Direct routing needs nothing more: the Device row holds the gateway URL."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def registered(self, lock_id: int) -> None:
        return None

    async def unregistered(self, lock_id: int) -> None:
        return None

    async def replaced(self, lock_id: int, holder: Holder, before: float) -> None:
        """The lock connected here while ``holder`` still thinks it holds it:
        tell that gateway to close its (dead or duplicate) connection."""
        if holder.url:
            await self.gateway.db(_drop_url, holder, lock_id, before)

    async def forward_unlock(self, lock_id: int, request_id: str, timeout: float) -> dict[str, Any]:
        """Unlock a lock that another gateway holds."""
        return await self.gateway.db(
            deliver_unlock, lock_id, request_id, timeout, not_via=self.gateway.id
        )


class RedisSide(DirectSide):
    """Registers held locks in Redis and serves the gateway's command channel."""

    TTL = 120

    def __init__(self, gateway: Gateway) -> None:
        super().__init__(gateway)
        import redis.asyncio

        self.redis = redis.asyncio.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3)
        self.channel = gateway_channel(gateway.id)
        self.tasks: list[asyncio.Task[None]] = []
        self.running: set[asyncio.Task[None]] = set()
        self.ready = asyncio.Event()

    async def start(self) -> None:
        await self.redis.ping()  # fail at start, clearly, if Redis is not there
        self.tasks = [
            asyncio.create_task(self._listen(), name="redis-listen"),
            asyncio.create_task(self._refresh(), name="redis-refresh"),
        ]
        await asyncio.wait_for(self.ready.wait(), 10)

    async def stop(self) -> None:
        for task in (*self.tasks, *self.running):
            task.cancel()
        with contextlib.suppress(Exception):
            for lock_id in list(self.gateway.connections):
                await self.unregistered(lock_id)
        with contextlib.suppress(Exception):
            await self.redis.aclose()

    async def registered(self, lock_id: int) -> None:
        await self.redis.set(lock_key(lock_id), self.gateway.id, ex=self.TTL)

    async def unregistered(self, lock_id: int) -> None:
        key = lock_key(lock_id)
        if await self.redis.get(key) == self.gateway.id.encode():
            await self.redis.delete(key)

    async def replaced(self, lock_id: int, holder: Holder, before: float) -> None:
        await self.redis.publish(
            gateway_channel(holder.gateway),
            json.dumps({"op": "drop", "lock": lock_id, "before": before}),
        )

    async def forward_unlock(self, lock_id: int, request_id: str, timeout: float) -> dict[str, Any]:
        timeout = clamp_timeout(timeout)
        gateway = _text(await self.redis.get(lock_key(lock_id)))
        if not gateway or gateway == self.gateway.id:
            return {"ok": False, "error": "offline"}
        reply = f"{_prefix()}:reply:{request_id}"
        command = {
            "op": "unlock",
            "lock": lock_id,
            "request": request_id,
            "timeout": timeout,
            "reply": reply,
        }
        if not await self.redis.publish(gateway_channel(gateway), json.dumps(command)):
            return {"ok": False, "error": "offline"}
        answer = await self.redis.blpop([reply], timeout=timeout + 1)
        if answer is None:
            return {"ok": False, "error": "timeout"}
        result: dict[str, Any] = json.loads(answer[1])
        return result

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self.TTL / 3)
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for lock_id in list(self.gateway.connections):
                        pipe.set(lock_key(lock_id), self.gateway.id, ex=self.TTL)
                    await pipe.execute()
            except Exception as exc:
                log.warning(
                    "gateway %s could not refresh its locks in Redis: %s", self.gateway.id, exc
                )

    async def _listen(self) -> None:
        """Serve the command channel; after a lost Redis connection, subscribe
        again and re-register the locks held here."""
        first = True
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    if not first:
                        for lock_id in list(self.gateway.connections):
                            await self.registered(lock_id)
                    first = False
                    self.ready.set()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._command(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "gateway %s lost its Redis channel (%s); retrying", self.gateway.id, exc
                )
                await asyncio.sleep(1)

    def _command(self, data: Any) -> None:
        try:
            command = json.loads(data)
            op, lock_id = command.get("op"), int(command["lock"])
        except (ValueError, TypeError, KeyError, AttributeError):
            log.warning("gateway %s ignored a malformed command: %.100r", self.gateway.id, data)
            return
        if op == "changed":
            self.gateway.changed(lock_id)
        elif op == "unlock":
            self._spawn(self._unlock(lock_id, command))
        elif op == "drop":
            self._spawn(self.gateway.drop(lock_id, before=float(command.get("before") or 0)))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    async def _unlock(self, lock_id: int, command: dict[str, Any]) -> None:
        try:
            result = await self.gateway.unlock(
                lock_id,
                str(command["request"]),
                float(command.get("timeout", 5)),
                forward=False,
            )
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.rpush(str(command["reply"]), json.dumps(result))
                pipe.expire(str(command["reply"]), 30)
                await pipe.execute()
        except Exception:
            log.exception(
                "gateway %s could not answer an unlock of lock %s", self.gateway.id, lock_id
            )


def _text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else value or ""


def gateway_side(gateway: Gateway) -> DirectSide:
    return RedisSide(gateway) if _backend() == "redis" else DirectSide(gateway)
