/* Bulk bytes from one process to another in CHUNK-byte writes.
 *
 *   bulk pipe|unix|shm TOTAL_BYTES CHUNK
 *
 * pipe: one pipe. unix: a SOCK_STREAM socketpair. shm: a ring of 16 slots
 * of CHUNK bytes in shared memory; the writer copies each chunk in, the
 * reader copies it out, and two process-shared semaphores count the free
 * and filled slots. The reader takes the first chunk untimed (so both sides
 * are running), then times the rest. Prints {"mb_per_s": 1e6 bytes per
 * second, "bytes": timed bytes, "secs": ...}. */
#include "bench.h"

#include <sys/socket.h>

#define SLOTS 16

enum mode { PIPE, UNIX, SHM };

struct shmring {
    sem_t free_slots, used_slots;
    char data[];
};

static enum mode mode;
static int fds[2]; /* [0] read side, [1] write side */
static struct shmring *ring;
static long chunk, chunks;

static void writer(int unused) {
    (void)unused;
    char *buf = malloc((size_t)chunk);
    if (!buf) die("malloc");
    memset(buf, 'x', (size_t)chunk);
    if (mode != SHM) close(fds[0]);
    for (long i = 0; i < chunks; i++) {
        if (mode == SHM) {
            sem_wait_intr(&ring->free_slots);
            memcpy(ring->data + (i % SLOTS) * chunk, buf, (size_t)chunk);
            sem_post(&ring->used_slots);
        } else {
            write_full(fds[1], buf, (size_t)chunk);
        }
    }
    free(buf);
}

/* Reads one chunk's worth of bytes; returns the number read. */
static long read_chunk(long i, char *buf) {
    if (mode == SHM) {
        sem_wait_intr(&ring->used_slots);
        memcpy(buf, ring->data + (i % SLOTS) * chunk, (size_t)chunk);
        sem_post(&ring->free_slots);
        return chunk;
    }
    long got = 0;
    while (got < chunk) {
        ssize_t r = read(fds[0], buf + got, (size_t)(chunk - got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) die("read");
        if (r == 0) break;
        got += r;
    }
    return got;
}

int main(int argc, char **argv) {
    const char *u = "bulk pipe|unix|shm TOTAL_BYTES CHUNK";
    if (argc != 4) usage(u);
    if (!strcmp(argv[1], "pipe")) mode = PIPE;
    else if (!strcmp(argv[1], "unix")) mode = UNIX;
    else if (!strcmp(argv[1], "shm")) mode = SHM;
    else usage(u);
    long total = arg_long(argv[2]);
    chunk = arg_long(argv[3]);
    chunks = total / chunk;
    if (chunks < 2) usage("bulk: TOTAL_BYTES must hold at least 2 chunks");

    switch (mode) {
    case PIPE:
        if (pipe(fds)) die("pipe");
        break;
    case UNIX:
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds)) die("socketpair");
        break;
    case SHM:
        ring = shared_alloc(sizeof *ring + (size_t)SLOTS * (size_t)chunk);
        sem_init_shared(&ring->free_slots, SLOTS);
        sem_init_shared(&ring->used_slots, 0);
        break;
    }
    pid_t child = fork_child(writer, 0);
    if (mode != SHM) close(fds[1]);

    char *buf = malloc((size_t)chunk);
    if (!buf) die("malloc");
    long first = read_chunk(0, buf);
    double t0 = now_s();
    long got = 0;
    for (long i = 1; i < chunks; i++) got += read_chunk(i, buf);
    double secs = now_s() - t0;
    reap(&child, 1);
    int ok = first == chunk && got == (chunks - 1) * chunk && buf[chunk - 1] == 'x';
    printf("{\"mb_per_s\":%.1f,\"bytes\":%ld,\"secs\":%.6f,\"ok\":%s}\n",
           (double)got / secs / 1e6, got, secs, ok ? "true" : "false");
    free(buf);
    return ok ? 0 : 1;
}
