"""Start N trivial processes, then join all of them: the cost per process.

    launch.py spawn|fork N

multiprocessing.Process with the given start method and a target that does
nothing. spawn starts a fresh interpreter per process (as a re-exec does);
fork copies this one.
Prints {"ns_per_op": ns per process, "ops": N, "secs": ...}.
"""

import multiprocessing as mp
import sys

from common import emit, join_all, now, positive, usage


def nothing():
    pass


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("spawn", "fork"):
        usage("launch.py spawn|fork N")
    ctx = mp.get_context(sys.argv[1])
    n = positive(sys.argv[2])
    t0 = now()
    procs = [ctx.Process(target=nothing) for _ in range(n)]
    for p in procs:
        p.start()
    join_all(procs)
    secs = now() - t0
    emit(ns_per_op=secs * 1e9 / n, ops=n, secs=secs, ok=True)


if __name__ == "__main__":
    main()
