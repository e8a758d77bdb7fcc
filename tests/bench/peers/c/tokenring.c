/* A token passed around a ring of processes connected by pipes: the cost of
 * a hop when many processes are blocked at once.
 *
 *   tokenring PROCS LAPS
 *
 * The parent is node 0; it forks nodes 1..PROCS-1. Pipe i carries the
 * token from node i to node i+1 (mod PROCS). One lap warms up (every node
 * has run once), then LAPS laps are timed by node 0. Prints
 * {"ns_per_op": ns per hop, "ops": hops, "secs": ...}. */
#include "bench.h"

static int procs;
static int (*pipes)[2];

static void node(int i) {
    int in = pipes[(i + procs - 1) % procs][0], out = pipes[i][1];
    for (int j = 0; j < procs; j++) {
        if (pipes[j][0] != in) close(pipes[j][0]);
        if (pipes[j][1] != out) close(pipes[j][1]);
    }
    char tok[MSG];
    for (;;) {
        read_full(in, tok, MSG);
        write_full(out, tok, MSG);
        if (tok[0] == 's') _exit(0);
    }
}

int main(int argc, char **argv) {
    const char *u = "tokenring PROCS LAPS";
    if (argc != 3) usage(u);
    procs = (int)arg_long(argv[1]);
    long laps = arg_long(argv[2]);
    if (procs < 2) usage(u);
    pipes = calloc((size_t)procs, sizeof *pipes);
    pid_t *pids = calloc((size_t)procs, sizeof *pids);
    if (!pipes || !pids) die("calloc");
    for (int i = 0; i < procs; i++)
        if (pipe(pipes[i]) < 0) die("pipe");
    for (int i = 1; i < procs; i++) pids[i - 1] = fork_child(node, i);
    int in = pipes[procs - 1][0], out = pipes[0][1];
    char tok[MSG];
    memset(tok, 'x', MSG);
    write_full(out, tok, MSG); /* the warm-up lap */
    read_full(in, tok, MSG);
    double t0 = now_s();
    for (long l = 0; l < laps; l++) {
        write_full(out, tok, MSG);
        read_full(in, tok, MSG);
    }
    double secs = now_s() - t0;
    tok[0] = 's';
    write_full(out, tok, MSG);
    read_full(in, tok, MSG);
    reap(pids, procs - 1);
    long hops = laps * procs;
    printf("{\"ns_per_op\":%.0f,\"ops\":%ld,\"secs\":%.6f,\"ok\":true}\n", secs * 1e9 / (double)hops, hops, secs);
    return 0;
}
