"""Bulk bytes from one process to another in CHUNK-byte writes.

    bulk.py pipe|unix|shm TOTAL_BYTES CHUNK

pipe: os.pipe, os.write / os.read. unix: a socket.socketpair (AF_UNIX,
SOCK_STREAM), sendall / recv. shm: multiprocessing.shared_memory holding a
ring of 16 slots of CHUNK bytes; the writer copies each chunk in, the reader
copies it out (bytes(...)), two multiprocessing.Semaphore count the free and
filled slots. The segment is unlinked as soon as it exists (the forked
writer inherits the mapping), so no name is left behind. The reader takes
the first chunk untimed, then times the rest.
Prints {"mb_per_s": 1e6 bytes per second, "bytes": timed bytes, "secs": ...}.
"""

import os
import socket
import sys
from multiprocessing import shared_memory

from common import emit, fork, now, positive, usage

USAGE = "bulk.py pipe|unix|shm TOTAL_BYTES CHUNK"
SLOTS = 16


def write_all(write, data):
    view = memoryview(data)
    while view:
        view = view[write(view):]


def main():
    if len(sys.argv) != 4:
        usage(USAGE)
    mode, total, chunk = sys.argv[1], positive(sys.argv[2]), positive(sys.argv[3])
    chunks = total // chunk
    if chunks < 2:
        usage("TOTAL_BYTES must hold at least 2 chunks")
    data = b"x" * chunk

    if mode == "shm":
        shm = shared_memory.SharedMemory(name="ipcscript-bench-%d-bulk" % os.getpid(),
                                         create=True, size=SLOTS * chunk)
        shm.unlink()
        free, used = fork.Semaphore(SLOTS), fork.Semaphore(0)

        def writer():
            for i in range(chunks):
                free.acquire()
                off = (i % SLOTS) * chunk
                shm.buf[off:off + chunk] = data
                used.release()

        def read_chunk(i):
            used.acquire()
            off = (i % SLOTS) * chunk
            got = bytes(shm.buf[off:off + chunk])
            free.release()
            return got
    elif mode in ("pipe", "unix"):
        if mode == "pipe":
            r, w = os.pipe()
            write, read, close_r, close_w = (lambda b: os.write(w, b)), (lambda k: os.read(r, k)), \
                (lambda: os.close(r)), (lambda: os.close(w))
        else:
            a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            write, read, close_r, close_w = b.send, a.recv, a.close, b.close

        def writer():
            close_r()
            for _ in range(chunks):
                write_all(write, data)

        def read_chunk(i):
            parts, got = [], 0
            while got < chunk:
                part = read(chunk - got)
                if not part:
                    break
                parts.append(part)
                got += len(part)
            return parts[0] if len(parts) == 1 else b"".join(parts)
    else:
        usage(USAGE)

    child = fork.Process(target=writer)
    child.start()
    if mode != "shm":
        close_w()
    first = read_chunk(0)
    t0 = now()
    got = 0
    for i in range(1, chunks):
        last = read_chunk(i)
        got += len(last)
    secs = now() - t0
    child.join()
    if mode == "shm":
        del first, last  # no exported views may outlive the mapping
        shm.close()
    ok = got == (chunks - 1) * chunk and child.exitcode == 0
    emit(mb_per_s=got / secs / 1e6, bytes=got, secs=secs, ok=ok)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
