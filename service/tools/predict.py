"""`nextword predict "how are yo"`: ask a running server and print the suggestion strip."""
from __future__ import annotations

import grpc

from service.client import ClientError, NextWordClient


def add_arguments(p) -> None:
    p.add_argument("text", help="the text typed so far (end it with a space for next-word suggestions)")
    p.add_argument("--address", default="localhost:50051", help="server address host:port")
    p.add_argument("-k", "--suggestions", type=int, default=3, help="how many suggestions")
    p.add_argument("--probability", action="store_true", help="show the model's probability of each word")
    p.add_argument("--timeout", type=float, default=5.0, help="deadline in seconds")


def main(args) -> int:
    with NextWordClient(args.address, timeout=args.timeout) as client:
        try:
            suggestions = client.predict(args.text, args.suggestions, args.probability)
        except grpc.RpcError as e:
            raise ClientError(f"{args.address}: {e.code().name}: {e.details()}") from None
    for s in suggestions:
        extra = f"  p={s.probability:.4f}" if args.probability else ""
        print(f"{s.text}\t{s.kind}{extra}")
    return 0
