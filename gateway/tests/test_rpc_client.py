"""The gateway's asyncio RPC client over a real broker, and how its errors become HTTP answers."""

from __future__ import annotations

import asyncio
import json
import random
import uuid

import aio_pika
import pytest
from comptoir_common.rpc_client import (
    RPC_EXCHANGE,
    RemoteError,
    RpcClient,
    ServiceTimeout,
    ServiceUnavailable,
)
from comptoir_gateway.rpc import Services
from fastapi import HTTPException


async def _responder(amqp_uri: str, service: str, handle):
    """A stand-in service speaking nameko's wire protocol: consumes ``<service>.*`` and replies to ``reply_to``."""
    connection = await aio_pika.connect(amqp_uri)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(RPC_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(f"rpc-{service}", auto_delete=True)
    await queue.bind(exchange, routing_key=f"{service}.*")

    async def on_request(message: aio_pika.abc.AbstractIncomingMessage):
        async with message.process():
            request = json.loads(message.body)
            reply = await handle(message.routing_key.split(".", 1)[1], request)
            await exchange.publish(
                aio_pika.Message(json.dumps(reply).encode(), correlation_id=message.correlation_id),
                routing_key=message.reply_to,
            )

    await queue.consume(on_request)
    return connection


def test_replies_are_matched_to_their_callers_even_out_of_order(amqp_uri):
    service = f"echo{uuid.uuid4().hex[:6]}"

    async def handle(method, request):
        await asyncio.sleep(random.uniform(0, 0.2))  # replies come back in a shuffled order
        return {"result": {"method": method, "n": request["kwargs"]["n"]}, "error": None}

    async def scenario():
        responder = await _responder(amqp_uri, service, handle)
        client = RpcClient(amqp_uri, timeout=10)
        await client.connect()
        try:
            results = await asyncio.gather(*(client.call(service, "double", n=n) for n in range(30)))
        finally:
            await client.close()
            await responder.close()
        return results

    results = asyncio.run(scenario())
    assert [r["n"] for r in results] == list(range(30))
    assert {r["method"] for r in results} == {"double"}


def test_remote_errors_keep_type_message_and_details(amqp_uri):
    service = f"failing{uuid.uuid4().hex[:6]}"

    async def handle(method, request):
        return {
            "result": None,
            "error": {
                "exc_type": "Conflict",
                "exc_path": "comptoir_common.errors.Conflict",
                "exc_args": ["Le ticket a été modifié entre-temps.", {"current": {"version": 3}}],
                "value": "Le ticket a été modifié entre-temps.",
            },
        }

    async def scenario():
        responder = await _responder(amqp_uri, service, handle)
        client = RpcClient(amqp_uri, timeout=10)
        await client.connect()
        try:
            with pytest.raises(RemoteError) as raised:
                await client.call(service, "update")
            with pytest.raises(HTTPException) as http_error:
                await Services(client).call(service, "update")
        finally:
            await client.close()
            await responder.close()
        return raised.value, http_error.value

    remote, http_error = asyncio.run(scenario())
    assert remote.exc_type == "Conflict" and remote.details == {"current": {"version": 3}}
    assert http_error.status_code == 409
    assert http_error.detail == {"message": "Le ticket a été modifié entre-temps.", "current": {"version": 3}}


def test_unexpected_remote_error_is_a_500_without_internals(amqp_uri):
    service = f"buggy{uuid.uuid4().hex[:6]}"

    async def handle(method, request):
        return {
            "result": None,
            "error": {"exc_type": "KeyError", "exc_args": ["secret_column"], "value": "'x'"},
        }

    async def scenario():
        responder = await _responder(amqp_uri, service, handle)
        client = RpcClient(amqp_uri, timeout=10)
        await client.connect()
        try:
            with pytest.raises(HTTPException) as http_error:
                await Services(client).call(service, "boom")
        finally:
            await client.close()
            await responder.close()
        return http_error.value

    error = asyncio.run(scenario())
    assert error.status_code == 500 and "secret_column" not in error.detail


def test_service_that_never_started_is_503(amqp_uri):
    async def scenario():
        client = RpcClient(amqp_uri, timeout=5)
        await client.connect()
        try:
            with pytest.raises(ServiceUnavailable):
                await client.call(f"absent{uuid.uuid4().hex[:6]}", "anything")
            with pytest.raises(HTTPException) as http_error:
                await Services(client).call(f"absent{uuid.uuid4().hex[:6]}", "anything")
        finally:
            await client.close()
        return http_error.value

    assert asyncio.run(scenario()).status_code == 503


def test_service_that_does_not_answer_is_504(amqp_uri):
    service = f"stuck{uuid.uuid4().hex[:6]}"

    async def scenario():
        # A queue bound but never consumed: the request waits there, as when every instance is down.
        connection = await aio_pika.connect(amqp_uri)
        channel = await connection.channel()
        exchange = await channel.declare_exchange(RPC_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(f"rpc-{service}", auto_delete=False)
        await queue.bind(exchange, routing_key=f"{service}.*")
        client = RpcClient(amqp_uri, timeout=0.5)
        await client.connect()
        try:
            with pytest.raises(ServiceTimeout):
                await client.call(service, "slow")
            with pytest.raises(HTTPException) as http_error:
                await Services(client).call(service, "slow")
        finally:
            await client.close()
            await queue.delete(if_unused=False, if_empty=False)
            await connection.close()
        return http_error.value

    assert asyncio.run(scenario()).status_code == 504
