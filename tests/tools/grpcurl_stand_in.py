"""The subset of grpcurl the README uses, for machines without grpcurl: ``list``, ``describe`` and unary calls.

Like grpcurl it knows nothing of the service in advance: every name and message type comes from the server's
reflection service, and requests and replies are proto3 JSON (replies with camelCase names). It accepts
``-plaintext``, ``-max-msg-sz N`` and ``-d DATA`` (``@`` reads standard input) before the address, so a README line
runs unchanged when ``grpcurl`` on ``PATH`` is this script. Errors print grpcurl's way and exit 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grpcurl", prefix_chars="-")
    parser.add_argument("-plaintext", action="store_true", required=True, help="only plaintext is supported")
    parser.add_argument("-max-msg-sz", type=int, default=4 * 1024 * 1024)
    parser.add_argument("-d", dest="data", help="request JSON, or @ for standard input")
    parser.add_argument("address")
    parser.add_argument("verb", help="list, describe, or a method as service/method")
    parser.add_argument("symbol", nargs="?")
    return parser


def _describe(pool: descriptor_pool.DescriptorPool, symbol: str) -> str:
    service = pool.FindServiceByName(symbol)
    lines = [f"{symbol} is a service:", f"service {service.name} {{"]
    for method in service.methods:
        stream = "stream " if method.server_streaming else ""
        lines.append(f"  rpc {method.name} ( .{method.input_type.full_name} ) returns ( {stream}"
                     f".{method.output_type.full_name} );")
    return "\n".join([*lines, "}"])


def _call(channel: grpc.Channel, pool: descriptor_pool.DescriptorPool, path: str, data: str) -> str:
    service_name, _, method_name = path.rpartition("/")
    method = pool.FindServiceByName(service_name).methods_by_name[method_name]
    request_type = message_factory.GetMessageClass(method.input_type)
    reply_type = message_factory.GetMessageClass(method.output_type)
    request = json_format.Parse(data or "{}", request_type())
    call = channel.unary_unary(f"/{service_name}/{method_name}", request_serializer=request_type.SerializeToString,
                               response_deserializer=reply_type.FromString)
    return json_format.MessageToJson(call(request, timeout=300), indent=2)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    data = sys.stdin.read() if args.data == "@" else args.data
    options = [("grpc.max_receive_message_length", args.max_msg_sz),
               ("grpc.max_send_message_length", args.max_msg_sz)]
    with grpc.insecure_channel(args.address, options=options) as channel:
        pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        try:
            if args.verb == "list":
                names = ProtoReflectionDescriptorDatabase(channel).get_services()
                print("\n".join(sorted(names)))
            elif args.verb == "describe":
                print(_describe(pool, args.symbol))
            else:
                print(_call(channel, pool, args.verb, data))
        except grpc.RpcError as exc:
            print(f"ERROR:\n  Code: {exc.code().name}\n  Message: {exc.details()}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
