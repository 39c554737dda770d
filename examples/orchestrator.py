"""An orchestrator-style backend on the bus (docs/protocol.md section 15), with nothing but
NATS JetStream and the public protocol: it reads the screens' chat requests (a
``contextual_update`` with text ``chat_request`` and data ``{"question"}``) from the
outbound stream and answers each with a streamed reply (``transcript`` frames), carrying
the request's ``requestId`` as its ``correlation_id``.

    COMPANION_BUS_URL=nats://127.0.0.1:4222 python examples/orchestrator.py
"""

import asyncio
import json
import os

import nats
from nats.js.api import ConsumerConfig, DeliverPolicy

URL = os.environ.get("COMPANION_BUS_URL", "nats://127.0.0.1:4222")
PREFIX = os.environ.get("COMPANION_BUS_PREFIX", "companion")


def answer_to(question: str) -> list[str]:
    """Stand-in for the model: the reply, in the pieces it would stream."""
    return ["You asked: ", f"{question!r}. ", "Here is what I found."]


async def main() -> None:
    nc = await nats.connect(URL)
    js = nc.jetstream()

    async def send(message: dict) -> None:
        await js.publish(f"{PREFIX}.in", json.dumps(message).encode())

    async def on_frame(msg) -> None:
        frame = json.loads(msg.data)
        if frame.get("type") != "contextual_update" or frame.get("text") != "chat_request":
            return
        sid, cid = frame["session_id"], frame.get("requestId") or f"seq-{frame['seq']}"
        question = (frame.get("data") or {}).get("question")
        if not isinstance(question, str) or not question:
            await send(
                {
                    "session_id": sid,
                    "type": "contextual_update",
                    "text": "chat_error",
                    "data": {"error": "data.question is required"},
                    "correlation_id": cid,
                }
            )
            return
        text, pieces = "", answer_to(question)
        for i, piece in enumerate(pieces):
            text += piece
            await send(
                {
                    "session_id": sid,
                    "type": "transcript",
                    "role": "agent",
                    "message_id": f"reply-{cid}",
                    "text": text,
                    "final": i == len(pieces) - 1,
                    "correlation_id": cid,
                    "idempotency_key": f"reply-{cid}-{i}",
                }
            )

    await js.subscribe(
        f"{PREFIX}.out.>",
        cb=on_frame,
        ordered_consumer=True,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW),
    )
    print("orchestrator: listening", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
