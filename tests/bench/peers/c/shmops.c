/* Operations on shared memory from WORKERS processes at once.
 *
 *   shmops add|mutex WORKERS N
 *
 * add: an atomic add (sequentially consistent) on one 64-bit counter.
 * mutex: a lock/unlock pair of one pthread mutex that is process-shared and
 * robust (the next locker learns that an owner died), the guarantees
 * ipc.mutex gives. N operations in all, N/WORKERS per worker; the parent
 * releases every worker at once and times until all are done. Prints
 * {"ops_per_s":..., "ops": N, "secs": ...}. */
#include "bench.h"

#include <pthread.h>

enum mode { ADD, MUTEX };

struct shared {
    struct startline *line;
    pthread_mutex_t mu;
    int64_t counter;
};

static enum mode mode;
static struct shared *sh;
static long per_worker;

static void lock_robust(pthread_mutex_t *m) {
    int e = pthread_mutex_lock(m);
    if (e == EOWNERDEAD) {
        pthread_mutex_consistent(m);
    } else if (e != 0) {
        errno = e;
        die("pthread_mutex_lock");
    }
}

static void worker(int unused) {
    (void)unused;
    startline_arrive(sh->line);
    if (mode == ADD) {
        for (long i = 0; i < per_worker; i++) __atomic_add_fetch(&sh->counter, 1, __ATOMIC_SEQ_CST);
    } else {
        for (long i = 0; i < per_worker; i++) {
            lock_robust(&sh->mu);
            pthread_mutex_unlock(&sh->mu);
        }
    }
    sem_post(&sh->line->done);
}

int main(int argc, char **argv) {
    const char *u = "shmops add|mutex WORKERS N";
    if (argc != 4) usage(u);
    if (!strcmp(argv[1], "add")) mode = ADD;
    else if (!strcmp(argv[1], "mutex")) mode = MUTEX;
    else usage(u);
    int workers = (int)arg_long(argv[2]);
    long n = arg_long(argv[3]);
    per_worker = n / workers;
    n = per_worker * workers;

    sh = shared_alloc(sizeof *sh);
    sh->line = startline_new();
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&sh->mu, &ma);

    pid_t pids[workers];
    for (int i = 0; i < workers; i++) pids[i] = fork_child(worker, i);
    double t0 = startline_release(sh->line, workers);
    startline_wait_done(sh->line, workers);
    double secs = now_s() - t0;
    reap(pids, workers);
    int ok = mode != ADD || sh->counter == n;
    printf("{\"ops_per_s\":%.0f,\"ops\":%ld,\"secs\":%.6f,\"ok\":%s}\n",
           (double)n / secs, n, secs, ok ? "true" : "false");
    return ok ? 0 : 1;
}
