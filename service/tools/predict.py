"""`nextword predict "how are yo"`: ask a running server and print the suggestion strip."""
from __future__ import annotations

import sys

import grpc

from service.client import ClientError
from service.client.connect import add_address_flags, connection, first_contact


def add_arguments(p) -> None:
    p.add_argument("text", help="the text typed so far (end it with a space for next-word suggestions)")
    p.add_argument("-k", "--suggestions", type=int, default=3, help="how many suggestions (at least 1)")
    p.add_argument("--probability", action="store_true", help="show the model's probability of each word")
    p.add_argument("--user", default="", help="as this user (a signed key: nextword user-key NAME)")
    add_address_flags(p, timeout=5.0)


def main(args) -> int:
    if args.suggestions < 1:
        raise ClientError(f"-k must be at least 1, got {args.suggestions}")
    conn = connection(args)
    first_contact(conn)
    with conn.client() as client:
        try:
            suggestions = client.predict(args.text, args.suggestions, args.probability, user=args.user)
        except grpc.RpcError as e:
            raise ClientError(f"{conn.address}: {e.code().name}: {e.details()}") from None
    if not suggestions and not suggestions.autocorrect:
        print("no suggestions: no word the model knows starts like that", file=sys.stderr)
        return 1
    for s in suggestions:
        extra = f"  p={s.probability:.4f}" if args.probability else ""
        print(f"{s.text}\t{s.kind}{extra}")
    fix = suggestions.autocorrect
    if fix:
        print(f"autocorrect\t{fix.original} -> {fix.replacement} (confidence {fix.confidence:.2f})")
    return 0
