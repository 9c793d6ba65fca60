"""The RabbitMQ management HTTP API (httpx): paged listings, and how its objects become TopicInfo.

Listings are paged (``?page=N&page_size=500``, pages 2.. fetched a few at a time) and ask only for
the columns used, so a vhost with thousands of queues stays fast. The broker refreshes queue
statistics every ``collect_statistics_interval`` (5 s by default): counts and rates here can be
that old; what must be exact (stream offsets, a queue's ready count in describe) comes from AMQP.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from workbench.broker import (
    AccessDenied,
    BrokerError,
    NotFound,
    PartitionInfo,
    Timeout,
    TopicInfo,
    Unreachable,
)

from .options import Endpoint, Secrets, scrub

PAGE_SIZE = 500
PAGE_CONCURRENCY = 4
TAP_PREFIX = "workbench.tap."

QUEUE_COLUMNS = ",".join(
    (
        "name", "type", "durable", "auto_delete", "exclusive", "arguments", "state", "node", "policy",
        "messages", "messages_ready", "messages_unacknowledged", "consumers", "consumer_capacity",
        "consumer_utilisation", "message_stats", "head_message_timestamp", "idle_since", "message_bytes",
    )
)  # fmt: skip
EXCHANGE_COLUMNS = "name,type,durable,auto_delete,internal,arguments,policy,message_stats"
#: Pauses before asking a GET again that failed with a server error (5xx): right after a node starts,
#: the management API answers 500 for a few seconds while its statistics database comes up.
SERVER_ERROR_RETRIES = (0.25, 0.5, 1.0, 2.0)
#: How old the figures of a listing can be; ``metadata["statistics"]`` of each topic says so.
STATISTICS_NOTE = "counts and rates are management statistics, refreshed every ~5 s: up to ~5 s old"
#: message_stats counters whose rates are reported (``<name>_details.rate``, per second)
RATE_NAMES = (
    "publish",
    "deliver_get",
    "deliver",
    "deliver_no_ack",
    "get",
    "ack",
    "redeliver",
    "publish_in",
    "publish_out",
)


class Management:
    """One httpx client for the connection's lifetime."""

    def __init__(self, ep: Endpoint, secrets: Secrets, timeout_s: float, context: ssl.SSLContext | None) -> None:
        self.where = ep.management_where
        self.user = ep.management_user
        self._secrets = secrets.values()
        self._timeout = timeout_s
        self.vhost = ep.vhost
        self._vq = quote(ep.vhost, safe="")
        if context is None:
            # Plain http: a context that trusts nothing (so nothing is ever verified by accident),
            # and cheap to make, unlike httpx's default one (it loads a CA bundle: ~0.2 s).
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self._client = httpx.AsyncClient(
            base_url=ep.management_url,
            auth=(ep.management_user, secrets.management_password),
            timeout=httpx.Timeout(timeout_s),
            verify=context,
            headers={"user-agent": "event-workbench"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    # ------------------------------------------------------------------ requests

    async def get(self, path: str, params: Mapping[str, Any] | None = None, *, missing_ok: bool = False) -> Any:
        return await self._request("GET", path, params=params, missing_ok=missing_ok)

    async def post(self, path: str, body: Mapping[str, Any]) -> Any:
        return await self._request("POST", path, body=body)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        missing_ok: bool = False,
    ) -> Any:
        try:
            response = await self._client.request(method, path, params=params, json=body)
            for delay in SERVER_ERROR_RETRIES if method == "GET" else ():
                if response.status_code < 500:
                    break
                await asyncio.sleep(delay)  # a node still starting answers 500 until its stats are up
                response = await self._client.request(method, path, params=params, json=body)
        except httpx.TimeoutException:
            raise Timeout(f"{self.where} did not answer within {self._timeout:g} s") from None
        except httpx.HTTPError as exc:
            detail = scrub(str(exc) or type(exc).__name__, self._secrets)
            raise Unreachable(f"{self.where} did not answer: {detail}") from None
        status = response.status_code
        if status == 404:
            if missing_ok:
                return None
            raise NotFound(f"{self.where}: {path} not found")
        if status == 401:
            reason = _reason(response)
            if reason and "login failed" not in reason.lower():  # e.g. "Not administrator user"
                raise AccessDenied(
                    f"{self.where}: user {self.user!r} may not read {path}: {reason}",
                    hint="the user needs the 'monitoring' or 'management' tag and permissions on the vhost",
                )
            raise AccessDenied(f"{self.where}: authentication failed for user {self.user!r}")
        if status == 403:
            raise AccessDenied(
                f"{self.where}: user {self.user!r} may not use the management API here",
                hint="the user needs the 'monitoring' or 'management' tag and permissions on the vhost",
            )
        if status >= 400:
            raise BrokerError(f"{self.where}: HTTP {status} for {path}")
        try:
            return response.json()
        except ValueError:
            raise BrokerError(f"{self.where}: {path} did not return JSON (is this the management API?)") from None

    async def paged(self, path: str, columns: str) -> list[dict[str, Any]]:
        """Every item of a paged listing, in the server's order (by name)."""
        params = {"page": 1, "page_size": PAGE_SIZE, "columns": columns}
        first = await self.get(path, params)
        if isinstance(first, list):  # an API without paging
            return first
        items: list[dict[str, Any]] = list(first.get("items", ()))
        pages = int(first.get("page_count") or 1)
        if pages > 1:
            gate = asyncio.Semaphore(PAGE_CONCURRENCY)

            async def page(n: int) -> list[dict[str, Any]]:
                async with gate:
                    body = await self.get(path, {**params, "page": n})
                    return list(body.get("items", ()))

            for chunk in await asyncio.gather(*(page(n) for n in range(2, pages + 1))):
                items.extend(chunk)
        return items

    # ------------------------------------------------------------------ paths

    def queues_path(self) -> str:
        return f"/api/queues/{self._vq}"

    def exchanges_path(self) -> str:
        return f"/api/exchanges/{self._vq}"

    def queue_path(self, name: str) -> str:
        return f"/api/queues/{self._vq}/{quote(name, safe='')}"

    def exchange_path(self, name: str) -> str:
        return f"/api/exchanges/{self._vq}/{quote(name or 'amq.default', safe='')}"

    async def vhost_exists(self) -> bool:
        """Whether the user sees the vhost. The listing, not /api/vhosts/NAME: that one is for
        administrators only, and a monitoring user must not look like a wrong password."""
        visible = await self.get("/api/vhosts", {"columns": "name"})
        return any(isinstance(v, dict) and v.get("name") == self.vhost for v in visible or ())

    async def queues(self) -> list[dict[str, Any]]:
        return await self.paged(self.queues_path(), QUEUE_COLUMNS)

    async def exchanges(self) -> list[dict[str, Any]]:
        return await self.paged(self.exchanges_path(), EXCHANGE_COLUMNS)

    async def queue(self, name: str) -> dict[str, Any] | None:
        return await self.get(self.queue_path(name), {"columns": QUEUE_COLUMNS}, missing_ok=True)

    async def exchange(self, name: str) -> dict[str, Any] | None:
        return await self.get(self.exchange_path(name), missing_ok=True)

    async def queue_bindings(self, name: str) -> list[dict[str, Any]]:
        return await self.get(f"{self.queue_path(name)}/bindings", missing_ok=True) or []

    async def exchange_bindings(self, name: str, direction: str) -> list[dict[str, Any]]:
        """``direction``: "source" (bindings from this exchange) or "destination" (into it)."""
        return await self.get(f"{self.exchange_path(name)}/bindings/{direction}", missing_ok=True) or []

    async def consumers(self) -> list[dict[str, Any]]:
        return await self.get(f"/api/consumers/{self._vq}") or []

    async def get_messages(self, name: str, count: int, truncate: int) -> list[dict[str, Any]]:
        """Up to ``count`` messages from the queue's head, requeued (moved to the back, redelivered)."""
        body = {"count": count, "ackmode": "ack_requeue_true", "encoding": "base64", "truncate": truncate}
        return await self.post(f"{self.queue_path(name)}/get", body) or []


# --------------------------------------------------------------------------- objects -> TopicInfo


def config_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def arguments_config(arguments: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(k): config_text(v) for k, v in (arguments or {}).items()}


def rates(item: Mapping[str, Any]) -> dict[str, float]:
    """Per-second rates of the message_stats counters (when the broker collects them)."""
    stats = item.get("message_stats") or {}
    out = {}
    for name in RATE_NAMES:
        details = stats.get(f"{name}_details")
        if isinstance(details, Mapping) and isinstance(details.get("rate"), (int, float)):
            out[name] = float(details["rate"])
    return out


def counters(item: Mapping[str, Any]) -> dict[str, int]:
    stats = item.get("message_stats") or {}
    return {k: v for k, v in stats.items() if isinstance(v, int) and not isinstance(v, bool)}


def is_internal_name(name: str) -> bool:
    return name.startswith(("amq.", TAP_PREFIX))


def depth(item: Mapping[str, Any]) -> int:
    ready = item.get("messages_ready")
    unacked = item.get("messages_unacknowledged")
    if isinstance(ready, int) and isinstance(unacked, int):
        return ready + unacked
    total = item.get("messages")
    return total if isinstance(total, int) else 0


def queue_metadata(item: Mapping[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "type": item.get("type", "classic"),
        "durable": item.get("durable"),
        "auto_delete": item.get("auto_delete"),
        "exclusive": item.get("exclusive"),
        "state": item.get("state"),
        "messages": item.get("messages"),
        "messages_ready": item.get("messages_ready"),
        "messages_unacknowledged": item.get("messages_unacknowledged"),
        "consumers": item.get("consumers"),
        "consumer_capacity": item.get("consumer_capacity"),
        "rates": rates(item),
        "counters": counters(item),
    }
    for key in ("node", "policy", "head_message_timestamp", "idle_since", "message_bytes"):
        if item.get(key) is not None:
            meta[key] = item[key]
    meta["arguments"] = dict(item.get("arguments") or {})
    return meta


def queue_info(item: Mapping[str, Any]) -> TopicInfo:
    """A queue or stream from a listing. Streams: offsets 0..messages are an estimate (see
    ``metadata["offsets"]``); ``describe_topic`` probes the exact ones."""
    name = item["name"]
    kind = "stream" if item.get("type") == "stream" else "queue"
    meta = queue_metadata(item)
    count = depth(item)
    if kind == "stream":
        meta["offsets"] = "estimated from the message count (statistics); describe probes them"
    else:
        meta["offsets"] = "0..depth: the messages in the queue now (ready + unacknowledged)"
    meta["statistics"] = STATISTICS_NOTE
    return TopicInfo(
        name=name,
        kind=kind,
        partitions=(PartitionInfo(0, 0, count),),
        config=arguments_config(item.get("arguments")),
        internal=is_internal_name(name),
        metadata=meta,
    )


def exchange_metadata(item: Mapping[str, Any]) -> dict[str, Any]:
    meta = {
        "type": item.get("type"),
        "durable": item.get("durable"),
        "auto_delete": item.get("auto_delete"),
        "internal": item.get("internal"),
        "arguments": dict(item.get("arguments") or {}),
        "rates": rates(item),
    }
    if item.get("policy") is not None:
        meta["policy"] = item["policy"]
    return meta


def exchange_info(item: Mapping[str, Any]) -> TopicInfo:
    """An exchange from a listing: no partitions and no events (it stores nothing: it routes
    each message to the queues and streams bound to it); its rates are statistics."""
    name = item["name"]
    meta = exchange_metadata(item)
    meta["statistics"] = STATISTICS_NOTE
    return TopicInfo(
        name=name,
        kind="exchange",
        partitions=(),
        config=arguments_config(item.get("arguments")),
        internal=is_internal_name(name) or bool(item.get("internal")),
        metadata=meta,
    )


def binding_dict(b: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "source": b.get("source", ""),
        "destination": b.get("destination", ""),
        "destination_type": b.get("destination_type", ""),
        "routing_key": b.get("routing_key", ""),
        "arguments": dict(b.get("arguments") or {}),
    }


def _reason(response: httpx.Response) -> str | None:
    """The management API's ``reason`` for a refusal, when it gives one."""
    try:
        body = response.json()
    except ValueError:
        return None
    reason = body.get("reason") if isinstance(body, dict) else None
    return reason if isinstance(reason, str) else None
