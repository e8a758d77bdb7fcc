/* One-way throughput of 64-byte messages through a bounded ring in shared
 * memory, with counting semaphores for the free and used slots: the C
 * counterpart of a mailbox.
 *
 *   ring PRODUCERS CONSUMERS CAPACITY N
 *
 * N messages in all, N/PRODUCERS from each producer. With one producer and
 * one consumer the ring needs no lock (each side owns its index); with more,
 * each side's index is guarded by a process-shared mutex, as in the textbook
 * bounded buffer. "Unbounded" is a capacity of N: a producer never waits.
 * Each producer ends with one stop message; a consumer stops at the first it
 * takes (a single consumer: at the last), so every message has been taken
 * when every consumer has stopped.
 * The parent releases all workers at once and takes the time until every
 * consumer is done. Prints {"msgs_per_s":..., "ops": N, "secs": ...}. */
#include "bench.h"

#include <pthread.h>

struct ring {
    struct startline *line;
    sem_t free_slots, used_slots;
    pthread_mutex_t put_lock, take_lock;
    long head, tail; /* next slot to take, next slot to fill */
    long cap;
    long taken; /* data messages taken, for the check */
    char slots[];
};

static struct ring *r;
static int producers, consumers;
static long total;

static void lock(pthread_mutex_t *m) {
    if (producers > 1 || consumers > 1) pthread_mutex_lock(m);
}

static void unlock(pthread_mutex_t *m) {
    if (producers > 1 || consumers > 1) pthread_mutex_unlock(m);
}

static void put(const char *msg) {
    sem_wait_intr(&r->free_slots);
    lock(&r->put_lock);
    memcpy(r->slots + (r->tail % r->cap) * MSG, msg, MSG);
    r->tail++;
    unlock(&r->put_lock);
    sem_post(&r->used_slots);
}

static void take(char *msg) {
    sem_wait_intr(&r->used_slots);
    lock(&r->take_lock);
    memcpy(msg, r->slots + (r->head % r->cap) * MSG, MSG);
    r->head++;
    unlock(&r->take_lock);
    sem_post(&r->free_slots);
}

static void producer(int i) {
    char msg[MSG];
    memset(msg, 'x', MSG);
    long mine = total / producers + (i < total % producers);
    startline_arrive(r->line);
    msg[0] = 'd';
    for (long k = 0; k < mine; k++) put(msg);
    msg[0] = 's';
    put(msg);
}

static void consumer(int i) {
    (void)i;
    char msg[MSG];
    long got = 0;
    int stops = producers / consumers;
    startline_arrive(r->line);
    for (;;) {
        take(msg);
        if (msg[0] == 's') {
            if (--stops == 0) break;
            continue;
        }
        got++;
    }
    __atomic_add_fetch(&r->taken, got, __ATOMIC_SEQ_CST);
    sem_post(&r->line->done);
}

int main(int argc, char **argv) {
    const char *u = "ring PRODUCERS CONSUMERS CAPACITY N";
    if (argc != 5) usage(u);
    producers = (int)arg_long(argv[1]);
    consumers = (int)arg_long(argv[2]);
    long cap = arg_long(argv[3]);
    total = arg_long(argv[4]);
    if (producers != consumers && consumers != 1)
        usage("ring: PRODUCERS must equal CONSUMERS, or CONSUMERS be 1 (a consumer stops after its share of the stop messages)");

    r = shared_alloc(sizeof *r + (size_t)cap * MSG);
    r->line = startline_new();
    r->cap = cap;
    sem_init_shared(&r->free_slots, (unsigned)cap);
    sem_init_shared(&r->used_slots, 0);
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(&r->put_lock, &ma);
    pthread_mutex_init(&r->take_lock, &ma);

    int workers = producers + consumers;
    pid_t pids[workers];
    for (int i = 0; i < consumers; i++) pids[i] = fork_child(consumer, i);
    for (int i = 0; i < producers; i++) pids[consumers + i] = fork_child(producer, i);
    double t0 = startline_release(r->line, workers);
    startline_wait_done(r->line, consumers);
    double secs = now_s() - t0;
    reap(pids, workers);
    int ok = r->taken == total;
    printf("{\"msgs_per_s\":%.0f,\"ops\":%ld,\"secs\":%.6f,\"ok\":%s}\n",
           (double)total / secs, total, secs, ok ? "true" : "false");
    return ok ? 0 : 1;
}
