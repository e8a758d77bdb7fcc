/* Start N trivial processes, then wait for all of them: the cost per process.
 *
 *   launch spawn|fork N [PROGRAM]
 *
 * spawn: posix_spawn of PROGRAM, /bin/true by default (a fresh program, as
 * a re-exec is).
 * fork: fork, and the child calls _exit(0) at once.
 * Prints {"ns_per_op": ns per process, "ops": N, "secs": ...}. */
#include "bench.h"

#include <spawn.h>

extern char **environ;

int main(int argc, char **argv) {
    const char *u = "launch spawn|fork N [PROGRAM]";
    if (argc != 3 && argc != 4) usage(u);
    const char *prog = argc == 4 ? argv[3] : "/bin/true";
    int spawn = !strcmp(argv[1], "spawn");
    if (!spawn && strcmp(argv[1], "fork")) usage(u);
    int n = (int)arg_long(argv[2]);
    pid_t *pids = calloc((size_t)n, sizeof *pids);
    if (!pids) die("calloc");
    char *const true_argv[] = {"true", NULL};

    fflush(stdout);
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        if (spawn) {
            int e = posix_spawn(&pids[i], prog, NULL, NULL, true_argv, environ);
            if (e != 0) {
                errno = e;
                die(prog);
            }
        } else {
            pids[i] = fork();
            if (pids[i] < 0) die("fork");
            if (pids[i] == 0) _exit(0);
        }
    }
    reap(pids, n);
    double secs = now_s() - t0;
    printf("{\"ns_per_op\":%.0f,\"ops\":%d,\"secs\":%.6f,\"ok\":true}\n", secs * 1e9 / n, n, secs);
    free(pids);
    return 0;
}
