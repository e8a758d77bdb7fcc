"""K idle processes, for peak RSS: multiprocessing.Process with the spawn
start method (a fresh interpreter, as a re-exec is), each sleeping MS
milliseconds. The harness reads VmHWM from /proc/PID/status of every process
of the run while they sleep; this program only says which are the workers.

    idle.py K MS

Prints {"pids": [worker pids], "ops": K}.
"""

import multiprocessing as mp
import sys
import time

from common import emit, join_all, positive, usage


def idle(ms):
    time.sleep(ms / 1000)


def main():
    if len(sys.argv) != 3:
        usage("idle.py K MS")
    k, ms = positive(sys.argv[1]), positive(sys.argv[2])
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=idle, args=(ms,)) for _ in range(k)]
    for p in procs:
        p.start()
    pids = [p.pid for p in procs]
    join_all(procs)
    emit(pids=pids, ops=k, ok=True)


if __name__ == "__main__":
    main()
