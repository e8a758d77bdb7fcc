/* Helpers shared by the C peers of the ipcscript benchmark.
 *
 * Every peer takes its parameters on argv, measures with
 * clock_gettime(CLOCK_MONOTONIC) around the measured loop only (after every
 * process is ready), and prints exactly one JSON line on stdout. Children are
 * forked after the shared objects exist; named kernel objects (POSIX message
 * queues) are unlinked as soon as they are opened, so nothing is left behind
 * however a run ends. */
#ifndef BENCH_H
#define BENCH_H

#define _GNU_SOURCE
#include <errno.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#define MSG 64 /* the message size of every message-passing case */

static inline double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline void die(const char *what) {
    fprintf(stderr, "%s: %s\n", what, strerror(errno));
    exit(1);
}

static inline void usage(const char *u) {
    fprintf(stderr, "usage: %s\n", u);
    exit(2);
}

static inline long arg_long(const char *s) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v <= 0) {
        fprintf(stderr, "not a positive number: %s\n", s);
        exit(2);
    }
    return v;
}

/* Zero-filled memory shared with every child forked after this call. */
static inline void *shared_alloc(size_t size) {
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) die("mmap");
    return p;
}

static inline void sem_init_shared(sem_t *s, unsigned v) {
    if (sem_init(s, 1, v) != 0) die("sem_init");
}

static inline void sem_wait_intr(sem_t *s) {
    while (sem_wait(s) != 0) {
        if (errno != EINTR) die("sem_wait");
    }
}

/* Fork a child that dies with its parent and runs fn(i); never returns in
 * the child. */
static inline pid_t fork_child(void (*fn)(int), int i) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        fn(i);
        _exit(0);
    }
    return pid;
}

/* Wait for every child; exit 1 when one failed. */
static inline void reap(pid_t *pids, int n) {
    for (int i = 0; i < n; i++) {
        int st;
        while (waitpid(pids[i], &st, 0) < 0) {
            if (errno != EINTR) die("waitpid");
        }
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "child %d failed (status 0x%x)\n", (int)pids[i], st);
            exit(1);
        }
    }
}

static inline void read_full(int fd, void *buf, size_t n) {
    char *p = buf;
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0) {
            if (errno == EINTR) continue;
            die("read");
        }
        if (r == 0) {
            fprintf(stderr, "read: unexpected end of stream\n");
            exit(1);
        }
        p += r;
        n -= (size_t)r;
    }
}

static inline void write_full(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n > 0) {
        ssize_t r = write(fd, p, n);
        if (r < 0) {
            if (errno == EINTR) continue;
            die("write");
        }
        p += r;
        n -= (size_t)r;
    }
}

/* Warm-up rounds before the timed loop: a tenth of n, at least 10. */
static inline long warmup(long n) {
    long w = n / 10;
    return w < 10 ? 10 : w;
}

/* A start line for several processes: each worker says it is ready and
 * waits for go; the coordinator (the parent) takes the start time only once
 * all are ready, and the end time when all have said done. */
struct startline {
    sem_t ready, go, done;
};

static inline struct startline *startline_new(void) {
    struct startline *s = shared_alloc(sizeof *s);
    sem_init_shared(&s->ready, 0);
    sem_init_shared(&s->go, 0);
    sem_init_shared(&s->done, 0);
    return s;
}

static inline void startline_arrive(struct startline *s) {
    sem_post(&s->ready);
    sem_wait_intr(&s->go);
}

/* Returns the time at which every worker was released. */
static inline double startline_release(struct startline *s, int workers) {
    for (int i = 0; i < workers; i++) sem_wait_intr(&s->ready);
    double t0 = now_s();
    for (int i = 0; i < workers; i++) sem_post(&s->go);
    return t0;
}

static inline void startline_wait_done(struct startline *s, int n) {
    for (int i = 0; i < n; i++) sem_wait_intr(&s->done);
}

#endif
