"""Helpers shared by the Python peers of the ipcscript benchmark.

Every peer takes its parameters on argv, times the measured loop only (after
every process is ready) with time.monotonic_ns() (CLOCK_MONOTONIC), and
prints exactly one JSON line on stdout. Message-passing peers use the fork
start method (the default on Linux for this Python); the launch and memory
peers say which method they use.
"""

import json
import multiprocessing as mp
import sys
import time

MSG = 64  # the message size of every message-passing case
BODY = b"x" * MSG

fork = mp.get_context("fork")


def now():
    """Monotonic seconds (CLOCK_MONOTONIC)."""
    return time.monotonic_ns() * 1e-9


def emit(**fields):
    print(json.dumps(fields), flush=True)


def warmup(n):
    """Warm-up rounds before the timed loop: a tenth of n, at least 10."""
    return max(10, n // 10)


def usage(text):
    print("usage: " + text, file=sys.stderr)
    sys.exit(2)


def positive(s):
    v = int(s)
    if v <= 0:
        usage("not a positive number: " + s)
    return v


class Startline:
    """Workers say ready and wait for go; the coordinator takes the start
    time once all are ready and the end time when all have said done."""

    def __init__(self, ctx=fork):
        self.ready = ctx.Semaphore(0)
        self.go = ctx.Semaphore(0)
        self.done = ctx.Semaphore(0)

    def arrive(self):
        self.ready.release()
        self.go.acquire()

    def release(self, workers):
        for _ in range(workers):
            self.ready.acquire()
        t0 = now()
        for _ in range(workers):
            self.go.release()
        return t0

    def wait_done(self, n):
        for _ in range(n):
            self.done.acquire()


def join_all(procs):
    for p in procs:
        p.join()
    bad = [p for p in procs if p.exitcode != 0]
    if bad:
        print("%d worker(s) failed, first exit code %s" % (len(bad), bad[0].exitcode), file=sys.stderr)
        sys.exit(1)
