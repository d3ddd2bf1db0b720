"""`nextword user-export --user KEY`: everything the server keeps for a user, as JSON.

The right of access: what this prints is all the store holds for the user (README,
"Privacy", documents every field), read through a running server with the user's key.
"""
from __future__ import annotations

import json
import sys

import grpc

from service.client import ClientError
from service.client.connect import add_address_flags, connection, first_contact


def add_arguments(p) -> None:
    p.add_argument("--user", required=True, help="the user's key (signed: nextword user-key NAME)")
    p.add_argument("--out", default="", help="write the JSON to this file instead of standard output")
    add_address_flags(p, timeout=10.0)


def main(args) -> int:
    conn = connection(args)
    first_contact(conn)
    address = conn.address
    with conn.client() as client:
        try:
            data = client.export(args.user)
        except grpc.RpcError as e:
            raise ClientError(f"{address}: {e.code().name}: {e.details()}") from None
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if args.out:
        try:
            with open(args.out, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as e:
            raise ClientError(f"cannot write {args.out}: {e.strerror}") from None
        print(f"{len(data['entries'])} entries, {len(data['suppressed'])} suppressed words -> {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
