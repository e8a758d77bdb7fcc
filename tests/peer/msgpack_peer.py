"""A peer outside the run, written from docs/LUA_API.md only: it speaks
ipcscript's framed messages over TCP with the stock msgpack module.

It listens on 127.0.0.1 (any free port), prints "port N", accepts one
connection, prints what the first message holds as one JSON line ("got
..."), then sends back: a reply echoing the body, a timestamp, a body with
an extension type ipcscript does not support, and one more message; then it
waits for the other side to close. Run by tests/python_peer_test.go.
"""
import json
import socket
import struct
import sys

import msgpack

HEADER = struct.Struct("<HBBHHIiiIQQ")  # magic, version, reserved, flags, type length,
#                                         body length, src, dst, reserved, seq, time
MAGIC, VERSION = 0x4D49, 1
OUTSIDE = 0  # src of a program outside the run


def recv_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def read_frame(conn):
    head = recv_exact(conn, 4)
    if head is None:
        return None
    (length,) = struct.unpack("<I", head)
    msg = recv_exact(conn, length)
    (magic, version, _, flags, tlen, blen, src, dst, _, seq, stamp) = HEADER.unpack_from(msg)
    assert magic == MAGIC and version == VERSION, (magic, version)
    typ = msg[HEADER.size:HEADER.size + tlen].decode()
    body = msg[HEADER.size + tlen:HEADER.size + tlen + blen]
    return {"type": typ, "src": src, "dst": dst, "seq": seq, "body": body}


def write_frame(conn, typ, body_bytes, seq):
    t = typ.encode()
    head = HEADER.pack(MAGIC, VERSION, 0, 0, len(t), len(body_bytes), OUTSIDE, 0, 0, seq, 0)
    msg = head + t + body_bytes
    conn.sendall(struct.pack("<I", len(msg)) + msg)


def jsonable(v):
    if isinstance(v, bytes):
        return {"bytes": v.hex()}
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, list):
        return [jsonable(x) for x in v]
    return v


def main():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    print("port", srv.getsockname()[1], flush=True)
    conn, _ = srv.accept()
    m = read_frame(conn)
    # The stock decoder, default options: raw=False, strict_map_key=True.
    body = msgpack.unpackb(m["body"])
    print("got", json.dumps({"type": m["type"], "src": m["src"], "seq": m["seq"], "body": jsonable(body)}), flush=True)

    write_frame(conn, "reply", msgpack.packb({"echo": body, "n": 42}), 1)
    write_frame(conn, "stamp", msgpack.packb(msgpack.Timestamp(1700000000, 500000000)), 2)
    write_frame(conn, "ext", msgpack.packb([1, msgpack.ExtType(5, b"abc")]), 3)
    write_frame(conn, "after", msgpack.packb("still there"), 4)
    while conn.recv(4096):
        pass
    conn.close()
    print("closed", flush=True)


if __name__ == "__main__":
    sys.exit(main())
