"""Operations on shared memory from WORKERS processes at once.

    shmops.py add|lock WORKERS N

add: the fast Python way to add atomically to a shared integer: a
multiprocessing.RawValue("q") guarded by a multiprocessing.Lock,
`with lock: v.value += 1` (Value's own lock is an RLock, slower).
lock: an acquire/release pair of one multiprocessing.Lock.
N operations in all, N/WORKERS per worker; the parent releases every worker
at once and times until all are done.
Prints {"ops_per_s":..., "ops": N, "secs": ...}.
"""

import sys

from common import Startline, emit, fork, join_all, now, positive, usage

USAGE = "shmops.py add|lock WORKERS N"


def adder(shared, line, k):
    v, lock = shared
    line.arrive()
    for _ in range(k):
        with lock:
            v.value += 1
    line.done.release()


def locker(lock, line, k):
    line.arrive()
    for _ in range(k):
        lock.acquire()
        lock.release()
    line.done.release()


def main():
    if len(sys.argv) != 4:
        usage(USAGE)
    mode, workers, n = sys.argv[1], positive(sys.argv[2]), positive(sys.argv[3])
    per = n // workers
    n = per * workers
    line = Startline()
    if mode == "add":
        shared = (fork.RawValue("q", 0), fork.Lock())
        target = adder
    elif mode == "lock":
        shared = fork.Lock()
        target = locker
    else:
        usage(USAGE)
    procs = [fork.Process(target=target, args=(shared, line, per)) for _ in range(workers)]
    for p in procs:
        p.start()
    t0 = line.release(workers)
    line.wait_done(workers)
    secs = now() - t0
    join_all(procs)
    ok = mode != "add" or shared[0].value == n
    emit(ops_per_s=n / secs, ops=n, secs=secs, ok=ok)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
