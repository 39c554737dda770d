"""Stream an agent's task into a session over gRPC (docs/protocol.md section 15): every
screen of the session sees the text grow as one ``transcript`` message.

    python examples/grpc_stream_task.py --target 127.0.0.1:50051 --token JWT --session ID
"""

import argparse
import asyncio

import grpc

from companion_ws.grpc.v1 import companion_pb2 as pb
from companion_ws.grpc.v1 import companion_pb2_grpc as pb_grpc


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="127.0.0.1:50051")
    parser.add_argument("--token", required=True)
    parser.add_argument("--session", required=True)
    parser.add_argument("--task-id", default="task-1")
    args = parser.parse_args()
    pieces = ["Checking carriers... ", "UPS Ground is cheapest, ", "arriving in 3 days."]

    async def chunks():
        for i, piece in enumerate(pieces):
            yield pb.TaskChunk(
                task_id=args.task_id,
                content=piece,
                is_final=i == len(pieces) - 1,
                session_id=args.session,
            )
            await asyncio.sleep(0.05)  # the agent thinking

    async with grpc.aio.insecure_channel(args.target) as channel:
        answer = await pb_grpc.SessionsStub(channel).StreamTask(
            chunks(), metadata=(("authorization", f"Bearer {args.token}"),)
        )
    print(f"{answer.task_id}: {answer.output}")


if __name__ == "__main__":
    asyncio.run(main())
