/* Round trip of a 64-byte message between two processes over one kernel
 * mechanism: ping sends, pong echoes it back, ping measures.
 *
 *   pingpong pipe|unix|mq|sem N
 *
 * pipe: two pipes, one per direction. unix: a SOCK_STREAM socketpair.
 * mq: two POSIX message queues (maxmsg 10, msgsize 64), unlinked at once.
 * sem: the 64 bytes travel in shared memory and two process-shared sem_t
 * (in MAP_SHARED|MAP_ANONYMOUS memory) hand the turn over.
 * Prints {"ns_per_op": ns per round trip, "ops": N, "secs": ...}. */
#include "bench.h"

#include <fcntl.h>
#include <mqueue.h>
#include <sys/socket.h>

enum mode { PIPE, UNIX, MQ, SEM };

struct semchan {
    sem_t to_pong, to_ping;
    char buf[MSG];
};

static enum mode mode;
static int pipe_to_pong[2], pipe_to_ping[2], sv[2];
static mqd_t mq_to_pong, mq_to_ping;
static struct semchan *sc;
static long rounds;

/* side 0 is ping, side 1 is pong */
static void xsend(int side, const char *buf) {
    switch (mode) {
    case PIPE:
        write_full(side ? pipe_to_ping[1] : pipe_to_pong[1], buf, MSG);
        break;
    case UNIX:
        write_full(sv[side], buf, MSG);
        break;
    case MQ:
        while (mq_send(side ? mq_to_ping : mq_to_pong, buf, MSG, 0) != 0) {
            if (errno != EINTR) die("mq_send");
        }
        break;
    case SEM:
        memcpy(sc->buf, buf, MSG);
        sem_post(side ? &sc->to_ping : &sc->to_pong);
        break;
    }
}

static void xrecv(int side, char *buf) {
    switch (mode) {
    case PIPE:
        read_full(side ? pipe_to_pong[0] : pipe_to_ping[0], buf, MSG);
        break;
    case UNIX:
        read_full(sv[side], buf, MSG);
        break;
    case MQ:
        for (;;) {
            ssize_t r = mq_receive(side ? mq_to_pong : mq_to_ping, buf, MSG, NULL);
            if (r == MSG) break;
            if (r < 0 && errno == EINTR) continue;
            die("mq_receive");
        }
        break;
    case SEM:
        sem_wait_intr(side ? &sc->to_pong : &sc->to_ping);
        memcpy(buf, sc->buf, MSG);
        break;
    }
}

static void pong(int unused) {
    (void)unused;
    char buf[MSG];
    for (long i = 0; i < rounds; i++) {
        xrecv(1, buf);
        xsend(1, buf);
    }
}

static mqd_t mq_new(const char *tag) {
    char name[64];
    snprintf(name, sizeof name, "/ipcscript-bench-%d-%s", (int)getpid(), tag);
    struct mq_attr attr = {.mq_maxmsg = 10, .mq_msgsize = MSG};
    mqd_t q = mq_open(name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600, &attr);
    if (q == (mqd_t)-1) die("mq_open");
    /* The descriptor is inherited across fork: the name is not needed. */
    if (mq_unlink(name) != 0) die("mq_unlink");
    return q;
}

int main(int argc, char **argv) {
    if (argc != 3) usage("pingpong pipe|unix|mq|sem N");
    if (!strcmp(argv[1], "pipe")) mode = PIPE;
    else if (!strcmp(argv[1], "unix")) mode = UNIX;
    else if (!strcmp(argv[1], "mq")) mode = MQ;
    else if (!strcmp(argv[1], "sem")) mode = SEM;
    else usage("pingpong pipe|unix|mq|sem N");
    long n = arg_long(argv[2]), warm = warmup(n);
    rounds = warm + n;

    switch (mode) {
    case PIPE:
        if (pipe(pipe_to_pong) || pipe(pipe_to_ping)) die("pipe");
        break;
    case UNIX:
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) die("socketpair");
        break;
    case MQ:
        mq_to_pong = mq_new("to-pong");
        mq_to_ping = mq_new("to-ping");
        break;
    case SEM:
        sc = shared_alloc(sizeof *sc);
        sem_init_shared(&sc->to_pong, 0);
        sem_init_shared(&sc->to_ping, 0);
        break;
    }

    pid_t child = fork_child(pong, 0);
    char msg[MSG], back[MSG];
    memset(msg, 'x', MSG);
    for (long i = 0; i < warm; i++) {
        xsend(0, msg);
        xrecv(0, back);
    }
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        xsend(0, msg);
        xrecv(0, back);
    }
    double secs = now_s() - t0;
    reap(&child, 1);
    int ok = memcmp(msg, back, MSG) == 0;
    printf("{\"ns_per_op\":%.1f,\"ops\":%ld,\"secs\":%.6f,\"ok\":%s}\n",
           secs * 1e9 / (double)n, n, secs, ok ? "true" : "false");
    return ok ? 0 : 1;
}
