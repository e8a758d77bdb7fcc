"""Round trip of a 64-byte message between two processes: ping sends, pong
echoes it back, ping measures.

    pingpong.py link|queue|pipe|unix|mq|sem N

link: multiprocessing.Pipe() (duplex), send/recv of a bytes object (pickled,
as a direct link encodes its body). queue: two multiprocessing.Queue, one
per direction. pipe: two os.pipe, raw os.write/os.read. unix: a
socket.socketpair (AF_UNIX, SOCK_STREAM). sem: the 64 bytes in shared memory
(a RawArray) and two multiprocessing.Semaphore handing the turn over.
mq: the standard library has no POSIX message queue: prints null.
Prints {"ns_per_op": ns per round trip, "ops": N, "secs": ...}.
"""

import os
import socket
import sys

from common import BODY, MSG, emit, fork, now, positive, usage, warmup

USAGE = "pingpong.py link|queue|pipe|unix|mq|sem N"


def read_exact(read, n):
    data = read(n)
    while len(data) < n:
        more = read(n - len(data))
        if not more:
            raise EOFError("unexpected end of stream")
        data += more
    return data


def transport(mode):
    """Returns (make ping's (send, recv), make pong's (send, recv)); the
    objects are created here, before the fork."""
    if mode == "link":
        a, b = fork.Pipe()
        return (lambda: (a.send, a.recv)), (lambda: (b.send, b.recv))
    if mode == "queue":
        to_pong, to_ping = fork.Queue(), fork.Queue()
        return (lambda: (to_pong.put, to_ping.get)), (lambda: (to_ping.put, to_pong.get))
    if mode == "pipe":
        r1, w1 = os.pipe()  # ping -> pong
        r2, w2 = os.pipe()  # pong -> ping

        def ping():
            return (lambda m: os.write(w1, m)), (lambda: read_exact(lambda k: os.read(r2, k), MSG))

        def pong():
            return (lambda m: os.write(w2, m)), (lambda: read_exact(lambda k: os.read(r1, k), MSG))

        return ping, pong
    if mode == "unix":
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        return ((lambda: (a.sendall, lambda: read_exact(a.recv, MSG))),
                (lambda: (b.sendall, lambda: read_exact(b.recv, MSG))))
    if mode == "sem":
        buf = fork.RawArray("c", MSG)
        to_pong, to_ping = fork.Semaphore(0), fork.Semaphore(0)

        def sender(sem):
            def send(m):
                buf.raw = m
                sem.release()
            return send

        def receiver(sem):
            def recv():
                sem.acquire()
                return buf.raw
            return recv

        return ((lambda: (sender(to_pong), receiver(to_ping))),
                (lambda: (sender(to_ping), receiver(to_pong))))
    usage(USAGE)


def pong(make, rounds):
    send, recv = make()
    for _ in range(rounds):
        send(recv())


def main():
    if len(sys.argv) != 3:
        usage(USAGE)
    mode, n = sys.argv[1], positive(sys.argv[2])
    if mode == "mq":
        emit(ns_per_op=None, why="no POSIX message queue in the Python standard library")
        return
    warm = warmup(n)
    make_ping, make_pong = transport(mode)
    child = fork.Process(target=pong, args=(make_pong, warm + n))
    child.start()
    send, recv = make_ping()
    for _ in range(warm):
        send(BODY)
        recv()
    t0 = now()
    for _ in range(n):
        send(BODY)
        back = recv()
    secs = now() - t0
    child.join()
    ok = back == BODY and child.exitcode == 0
    emit(ns_per_op=secs * 1e9 / n, ops=n, secs=secs, ok=ok)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
