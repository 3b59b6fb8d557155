"""Asyncio client for nameko's RPC wire protocol, for the gateway (which must never block its event loop).

One connection, one channel and one exclusive reply queue per process; requests are matched to replies by
correlation id. A request is JSON ``{"args": [...], "kwargs": {...}}`` published to exchange ``nameko-rpc`` with
routing key ``<service>.<method>``; the reply is ``{"result": ..., "error": null | {"exc_type", "value", ...}}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from aiormq.exceptions import DeliveryError

from comptoir_common.events import exchange_name

log = logging.getLogger(__name__)

RPC_EXCHANGE = "nameko-rpc"


class RpcError(Exception):
    """Base of the client's errors."""


class ServiceUnavailable(RpcError):
    """The broker is down, or no instance of the service has ever declared its queue."""


class ServiceTimeout(RpcError):
    """No reply within the timeout."""


class RemoteError(RpcError):
    """The service raised; ``exc_type`` names the exception, ``message`` is its text (French for user errors)."""

    def __init__(self, exc_type: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(f"{exc_type}: {message}")
        self.exc_type = exc_type
        self.message = message
        self.details = details or {}


class RpcClient:
    def __init__(self, amqp_uri: str, timeout: float = 10.0, name: str = "gateway"):
        self.amqp_uri = amqp_uri
        self.timeout = timeout
        self.name = name
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None
        self._channel = None
        self._exchange = None
        self._reply_queue_name = f"rpc.reply-{name}-{uuid.uuid4()}"
        self._pending: dict[str, asyncio.Future] = {}

    @property
    def connected(self) -> bool:
        return self._connection is not None and not self._connection.is_closed

    async def connect(self) -> None:
        self._connection = await aio_pika.connect_robust(
            self.amqp_uri, client_properties={"connection_name": self.name}
        )
        self._channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        self._exchange = await self._channel.declare_exchange(
            RPC_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        reply_queue = await self._channel.declare_queue(
            self._reply_queue_name, exclusive=True, auto_delete=True
        )
        await reply_queue.bind(self._exchange, routing_key=self._reply_queue_name)
        await reply_queue.consume(self._on_reply, no_ack=True)

    async def close(self) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ServiceUnavailable("gateway shutting down"))
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._pending.get(message.correlation_id or "")
        if future is None or future.done():
            return  # a reply that arrived after its timeout
        try:
            future.set_result(json.loads(message.body))
        except ValueError as exc:
            future.set_exception(RpcError(f"unreadable reply: {exc}"))

    async def call(
        self, service: str, method: str, *args: Any, timeout: float | None = None, **kwargs: Any
    ) -> Any:
        """Call ``service.method(*args, **kwargs)`` and return its result."""
        if self._exchange is None:
            raise ServiceUnavailable("not connected to the broker")
        correlation_id = str(uuid.uuid4())
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        message = aio_pika.Message(
            body=json.dumps({"args": list(args), "kwargs": kwargs}).encode(),
            content_type="application/json",
            correlation_id=correlation_id,
            reply_to=self._reply_queue_name,
            headers={"nameko.call_id_stack": [f"{self.name}.{method}.{correlation_id}"]},
        )
        try:
            try:
                await self._exchange.publish(message, routing_key=f"{service}.{method}", mandatory=True)
            except DeliveryError as exc:
                raise ServiceUnavailable(f"service {service} has no queue on the broker") from exc
            except (aio_pika.exceptions.AMQPError, ConnectionError, RuntimeError) as exc:
                raise ServiceUnavailable(f"broker unavailable: {exc}") from exc
            try:
                reply = await asyncio.wait_for(future, timeout or self.timeout)
            except TimeoutError as exc:
                raise ServiceTimeout(
                    f"{service}.{method} did not answer in {timeout or self.timeout:.0f}s"
                ) from exc
        finally:
            self._pending.pop(correlation_id, None)
        error = reply.get("error")
        if error:
            raise _remote_error(error)
        return reply.get("result")

    async def subscribe(
        self,
        source_service: str,
        event_types: list[str],
        handler: Callable[[dict], Awaitable[None]],
    ) -> None:
        """Receive ``event_types`` from ``source_service`` in this process only (exclusive, auto-deleted queue).

        For what each gateway instance must know at once (a user deactivated, a ticket changed for live pages);
        durable processing belongs to services, not here.
        """
        if self._channel is None:
            raise ServiceUnavailable("not connected to the broker")
        exchange = await self._channel.declare_exchange(
            exchange_name(source_service), aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await self._channel.declare_queue(exclusive=True, auto_delete=True)
        for event_type in event_types:
            await queue.bind(exchange, routing_key=event_type)

        async def on_message(message: AbstractIncomingMessage) -> None:
            async with message.process(ignore_processed=True):
                try:
                    await handler(json.loads(message.body))
                except Exception:
                    log.exception("gateway event handler failed")

        await queue.consume(on_message)


def _remote_error(error: dict) -> RemoteError:
    exc_args = error.get("exc_args") or []
    details = exc_args[1] if len(exc_args) > 1 else {}
    if isinstance(details, str):
        # ComptoirError sends its details as JSON (nameko would stringify every value of a dict).
        try:
            details = json.loads(details)
        except ValueError:
            details = {}
    if not isinstance(details, dict):
        details = {}
    message = exc_args[0] if exc_args and isinstance(exc_args[0], str) else error.get("value", "")
    return RemoteError(error.get("exc_type", "Exception"), message, details)
