"""How a web worker reaches the gateway that holds a lock's connection.

- ``direct`` (default, no extra service): each gateway records its internal
  URL on the lock's Device row when the lock connects; a web worker calls
  that URL. Works across machines as long as gateways are reachable.
- ``redis``: gateways register the locks they hold in Redis and listen on
  their own channel; web workers publish commands there and wait for the reply
  on a list. Select with DOORKEEP_GATEWAY_ROUTING=redis and REDIS_URL.

Both give the same answers: ok, or a LockOffline / LockTimeout domain error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils.translation import gettext as _

from doorkeep.core.errors import DomainError
from doorkeep.gateway.models import Device

if TYPE_CHECKING:
    from doorkeep.gateway.server import Gateway

log = logging.getLogger("doorkeep.gateway")


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


def _redis() -> Any:
    import redis

    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=10)


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


def send_unlock(lock_id: int, request_id: str, *, timeout: float) -> dict[str, Any]:
    """Ask the lock to open; returns when it acknowledged. Raises LockOffline,
    LockTimeout or LockRefused."""
    if _backend() == "redis":
        return _answer(_redis_unlock(lock_id, request_id, timeout))
    from doorkeep.gateway.server import internal_token

    url = (
        Device.objects.filter(lock_id=lock_id, online=True)
        .values_list("gateway_url", flat=True)
        .first()
    )
    if not url:
        return _answer({"ok": False, "error": "offline"})
    request = urllib.request.Request(  # noqa: S310 - the gateway's own http URL
        f"{url}/internal/unlock?lock={lock_id}&request={request_id}&timeout={timeout}",
        headers={"X-Doorkeep-Internal": internal_token()},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout + 2) as response:  # noqa: S310 - our gateway
            return _answer(json.loads(response.read()))
    except (urllib.error.URLError, OSError, ValueError):
        return _answer({"ok": False, "error": "offline"})


def notify_changed(lock_id: int) -> None:
    """Tell the gateway holding the lock that its list changed (after commit).
    Best effort: gateways also poll, so a lost notice only delays the push."""
    try:
        if _backend() == "redis":
            client = _client()
            gateway = client.get(f"doorkeep:lock:{lock_id}")
            if gateway:
                client.publish(
                    f"doorkeep:gateway:{gateway.decode()}",
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
                f"{url}/internal/changed?lock={lock_id}",
                headers={"X-Doorkeep-Internal": internal_token()},
            )
            with urllib.request.urlopen(request, timeout=2):  # noqa: S310
                pass
    except Exception:
        log.info("could not notify the gateway of a change to lock %s", lock_id)


def _redis_unlock(lock_id: int, request_id: str, timeout: float) -> dict[str, Any]:
    client = _client()
    gateway = client.get(f"doorkeep:lock:{lock_id}")
    if not gateway:
        return {"ok": False, "error": "offline"}
    reply = f"doorkeep:reply:{request_id}"
    receivers = client.publish(
        f"doorkeep:gateway:{gateway.decode()}",
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
    if not receivers:
        return {"ok": False, "error": "offline"}
    answer = client.blpop([reply], timeout=timeout + 1)
    if answer is None:
        return {"ok": False, "error": "timeout"}
    result: dict[str, Any] = json.loads(answer[1])
    return result


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


class RedisSide(DirectSide):
    """Registers held locks in Redis and serves the gateway's command channel."""

    TTL = 120

    def __init__(self, gateway: Gateway) -> None:
        super().__init__(gateway)
        import redis.asyncio

        self.redis = redis.asyncio.Redis.from_url(settings.REDIS_URL)
        self.task: asyncio.Task[None] | None = None
        self.refresh: asyncio.Task[None] | None = None
        self.running: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.pubsub = self.redis.pubsub()
        await self.pubsub.subscribe(f"doorkeep:gateway:{self.gateway.id}")
        self.task = asyncio.create_task(self._listen())
        self.refresh = asyncio.create_task(self._refresh())

    async def stop(self) -> None:
        for task in (self.task, self.refresh):
            if task is not None:
                task.cancel()
        with contextlib.suppress(Exception):
            for lock_id in list(self.gateway.connections):
                await self.unregistered(lock_id)
            await self.pubsub.aclose()
            await self.redis.aclose()

    async def registered(self, lock_id: int) -> None:
        await self.redis.set(f"doorkeep:lock:{lock_id}", self.gateway.id, ex=self.TTL)

    async def unregistered(self, lock_id: int) -> None:
        key = f"doorkeep:lock:{lock_id}"
        if await self.redis.get(key) == self.gateway.id.encode():
            await self.redis.delete(key)

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self.TTL / 3)
            async with self.redis.pipeline(transaction=False) as pipe:
                for lock_id in list(self.gateway.connections):
                    pipe.set(f"doorkeep:lock:{lock_id}", self.gateway.id, ex=self.TTL)
                await pipe.execute()

    async def _listen(self) -> None:
        async for message in self.pubsub.listen():
            if message.get("type") != "message":
                continue
            try:
                command = json.loads(message["data"])
            except ValueError:
                continue
            if command.get("op") == "changed":
                self.gateway.changed(int(command["lock"]))
            elif command.get("op") == "unlock":
                task = asyncio.create_task(self._unlock(command))
                self.running.add(task)
                task.add_done_callback(self.running.discard)

    async def _unlock(self, command: dict[str, Any]) -> None:
        result = await self.gateway.unlock(
            int(command["lock"]), str(command["request"]), float(command.get("timeout", 5))
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(command["reply"], json.dumps(result))
            pipe.expire(command["reply"], 30)
            await pipe.execute()


def gateway_side(gateway: Gateway) -> DirectSide:
    return RedisSide(gateway) if _backend() == "redis" else DirectSide(gateway)
