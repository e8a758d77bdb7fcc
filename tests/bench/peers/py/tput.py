"""One-way throughput of 64-byte messages through one multiprocessing.Queue:
the Python counterpart of a mailbox.

    tput.py PRODUCERS CONSUMERS CAPACITY|unbounded N

N messages in all, N/PRODUCERS from each producer; the queue has
maxsize=CAPACITY, or no bound. Each producer ends with one stop message
(None); a consumer stops at the first it takes, so every message has been
taken when every consumer has stopped. The parent releases all workers at
once and times until every consumer is done.
Prints {"msgs_per_s":..., "ops": N, "secs": ...}.
"""

import sys

from common import BODY, Startline, emit, fork, join_all, now, positive, usage

USAGE = "tput.py PRODUCERS CONSUMERS CAPACITY|unbounded N"


def producer(q, line, mine):
    line.arrive()
    for _ in range(mine):
        q.put(BODY)
    q.put(None)


def consumer(q, line, taken):
    line.arrive()
    got = 0
    while q.get() is not None:
        got += 1
    with taken.get_lock():
        taken.value += got
    line.done.release()


def main():
    if len(sys.argv) != 5:
        usage(USAGE)
    producers, consumers = positive(sys.argv[1]), positive(sys.argv[2])
    cap = 0 if sys.argv[3] == "unbounded" else positive(sys.argv[3])
    n = positive(sys.argv[4])
    if producers != consumers:
        usage("PRODUCERS must equal CONSUMERS (one stop message each)")
    q = fork.Queue(maxsize=cap)
    line = Startline()
    taken = fork.Value("q", 0)
    procs = [fork.Process(target=consumer, args=(q, line, taken)) for _ in range(consumers)]
    procs += [fork.Process(target=producer, args=(q, line, n // producers + (i < n % producers)))
              for i in range(producers)]
    for p in procs:
        p.start()
    t0 = line.release(len(procs))
    line.wait_done(consumers)
    secs = now() - t0
    join_all(procs)
    ok = taken.value == n
    emit(msgs_per_s=n / secs, ops=n, secs=secs, ok=ok)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
