#!/usr/bin/env python3
"""Protobuf framing for scripts/bench.sh, which calls the worker's unary RunJob with curl.

    bench-grpc.py request --repo URL --image NAME [--branch B] [--dockerfile PATH]
                  [--token-env VAR] [--option STAGE.NAME=VALUE ...] > FILE
        writes one JobRequest in gRPC framing (5-byte prefix, then the message). The git token is
        read from the environment variable VAR, never from the arguments.
    bench-grpc.py response FILE
        reads a JobResponse in gRPC framing and prints it as `key=value` lines: success, outcome,
        duration_ms, image_uri, image_digest, commit_sha, error_code, failed_stage, message and
        stage.<id>=<duration_ms> per stage. Exit 1 when FILE holds no JobResponse.
    bench-grpc.py ping --port PORT --count N [--interval S] [--while-pid PID]
        calls JobService/Ping N times on ONE HTTP/2 connection to 127.0.0.1:PORT, one call every S
        seconds (default 0.02), and prints `<milliseconds> <WorkerStatus number>` per call; stops
        early once process PID has ended. The time is from writing the request to reading the end
        of its answer (the trailers), as a client on a long-lived channel sees it.

Why not a gRPC library (none is installed here): curl times the call itself (`-w %{time_total}`), with no client JVM or
Python start-up inside the figure, and this file needs nothing but the standard library. Only the
fields the benchmark uses are encoded or decoded (proto/src/main/proto/slipway_worker.proto).
Ping has its own minimal HTTP/2 client because curl 7.88 cannot reuse an HTTP/2 connection for a
second POST ("Error in the HTTP2 framing layer"), and a new connection per call would time TCP and
HTTP/2 set-up rather than the answer.
"""
import argparse
import os
import socket
import struct
import sys
import time


def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field_bytes(number, data):
    return varint(number << 3 | 2) + varint(len(data)) + data


def field_string(number, text):
    return field_bytes(number, text.encode()) if text else b""


def request(args):
    message = b"".join([
        field_string(2, args.repo),
        field_string(3, args.branch),
        field_string(5, args.image),
        field_string(6, args.dockerfile),
    ])
    if args.token_env:
        token = os.environ.get(args.token_env)
        if not token:
            sys.exit(f"bench-grpc.py: environment variable {args.token_env} is not set or empty")
        message += field_string(4, token)
    for option in args.option:
        key, sep, value = option.partition("=")
        if not sep:
            sys.exit(f"bench-grpc.py: --option {option!r} is not STAGE.NAME=VALUE")
        # map<string,string> stage_options = 12: one entry message (key 1, value 2) per pair
        message += field_bytes(12, field_string(1, key) + field_string(2, value))
    sys.stdout.buffer.write(b"\0" + struct.pack(">I", len(message)) + message)


def read_varint(data, pos):
    shift = value = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def fields(data):
    """Yields (number, value) with value an int (varint) or bytes (length-delimited)."""
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(data, pos)
        elif wire == 2:
            length, pos = read_varint(data, pos)
            value, pos = data[pos:pos + length], pos + length
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"wire type {wire}")
        yield number, value


OUTCOMES = {0: "UNSPECIFIED", 1: "SUCCEEDED", 2: "FAILED", 3: "CANCELLED", 4: "TIMED_OUT"}
STRINGS = {3: "message", 5: "failed_stage", 6: "error_code", 7: "image_uri", 8: "image_digest",
           9: "commit_sha"}


def response(args):
    with open(args.file, "rb") as f:
        data = f.read()
    if len(data) < 5:
        print("error=no JobResponse in the answer")
        sys.exit(1)
    length = struct.unpack(">I", data[1:5])[0]
    out = {"success": "false", "outcome": OUTCOMES[0], "duration_ms": "0"}
    stages = []
    for number, value in fields(data[5:5 + length]):
        if number == 2:
            out["success"] = "true" if value else "false"
        elif number == 4:
            out["outcome"] = OUTCOMES.get(value, str(value))
        elif number == 11:
            out["duration_ms"] = str(value)
        elif number in STRINGS:
            out[STRINGS[number]] = value.decode(errors="replace")
        elif number == 10:
            stage = dict(fields(value))
            stages.append((stage.get(1, b"?").decode(), stage.get(3, 0)))
    for key, value in out.items():
        print(f"{key}={' '.join(value.split())}")
    for name, millis in stages:
        print(f"stage.{name}={millis}")


# HTTP/2 (RFC 9113) frame types and flags the ping client uses.
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 3, 4, 6, 7, 8
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def hpack_literal(name, value):
    """A header as 'literal without indexing, new name', no Huffman: no HPACK state to keep."""
    def string(text):
        data = text.encode()
        if len(data) >= 127:
            raise ValueError("header too long for this encoder")
        return bytes([len(data)]) + data
    return b"\0" + string(name) + string(value)


def alive(pid):
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def ping(args):
    sock = socket.create_connection(("127.0.0.1", args.port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reader = sock.makefile("rb")

    def read_frame():
        head = reader.read(9)
        if len(head) < 9:
            sys.exit("bench-grpc.py: the worker closed the connection")
        length = int.from_bytes(head[:3], "big")
        stream = struct.unpack(">I", head[5:9])[0] & 0x7FFFFFFF
        return head[3], head[4], stream, reader.read(length)

    def answer_control(kind, flags, payload):
        if kind == SETTINGS and not flags & ACK:
            sock.sendall(frame(SETTINGS, ACK, 0))
        elif kind == PING and not flags & ACK:
            sock.sendall(frame(PING, ACK, 0, payload))
        elif kind == GOAWAY:
            sys.exit("bench-grpc.py: the worker sent GOAWAY")

    sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(SETTINGS, 0, 0))
    header_block = b"".join(hpack_literal(n, v) for n, v in [
        (":method", "POST"), (":scheme", "http"), (":path", "/slipway.worker.v1.JobService/Ping"),
        (":authority", f"127.0.0.1:{args.port}"), ("content-type", "application/grpc"),
        ("te", "trailers")])
    stream = 1
    next_call = time.perf_counter()
    for _ in range(args.count):
        if not alive(args.while_pid):
            break
        pause = next_call - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        next_call = time.perf_counter() + args.interval
        start = time.perf_counter()
        sock.sendall(frame(HEADERS, END_HEADERS, stream, header_block)
                     + frame(DATA, END_STREAM, stream, b"\0\0\0\0\0"))
        body = b""
        while True:
            kind, flags, sid, payload = read_frame()
            if sid == 0:
                answer_control(kind, flags, payload)
                continue
            if kind == DATA:
                body += payload
                if payload:  # give the connection's receive window back
                    sock.sendall(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", len(payload))))
            elif kind == RST_STREAM:
                sys.exit(f"bench-grpc.py: the worker reset the Ping stream ({payload.hex()})")
            if sid == stream and kind in (DATA, HEADERS) and flags & END_STREAM:
                break
        elapsed = (time.perf_counter() - start) * 1000
        status = dict(fields(body[5:])).get(2, 0) if len(body) >= 5 else -1
        print(f"{elapsed:.3f} {status}", flush=True)
        stream += 2
    sock.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    req = sub.add_parser("request")
    req.add_argument("--repo", required=True)
    req.add_argument("--image", required=True)
    req.add_argument("--branch", default="")
    req.add_argument("--dockerfile", default="")
    req.add_argument("--token-env")
    req.add_argument("--option", action="append", default=[])
    resp = sub.add_parser("response")
    resp.add_argument("file")
    pin = sub.add_parser("ping")
    pin.add_argument("--port", type=int, required=True)
    pin.add_argument("--count", type=int, required=True)
    pin.add_argument("--interval", type=float, default=0.02)
    pin.add_argument("--while-pid", type=int)
    args = parser.parse_args()
    {"request": request, "response": response, "ping": ping}[args.command](args)


if __name__ == "__main__":
    main()
