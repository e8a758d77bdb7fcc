/* K idle processes, for peak RSS: each is this program started afresh
 * (posix_spawn of /proc/self/exe), sleeps MS milliseconds and exits. The
 * harness reads VmHWM from /proc/PID/status of every process of the run
 * while they sleep; this program only says which processes are the workers.
 *
 *   idle K MS
 *
 * Prints {"pids": [worker pids], "ops": K}. */
#include "bench.h"

#include <spawn.h>

extern char **environ;

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--child")) {
        long ms = arg_long(argv[2]);
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
        return 0;
    }
    if (argc != 3) usage("idle K MS");
    int k = (int)arg_long(argv[1]);
    arg_long(argv[2]);
    pid_t *pids = calloc((size_t)k, sizeof *pids);
    if (!pids) die("calloc");
    char *const child_argv[] = {"idle", "--child", argv[2], NULL};
    for (int i = 0; i < k; i++) {
        int e = posix_spawn(&pids[i], "/proc/self/exe", NULL, NULL, child_argv, environ);
        if (e != 0) {
            errno = e;
            die("posix_spawn");
        }
    }
    reap(pids, k);
    printf("{\"pids\":[");
    for (int i = 0; i < k; i++) printf("%s%d", i ? "," : "", (int)pids[i]);
    printf("],\"ops\":%d,\"ok\":true}\n", k);
    free(pids);
    return 0;
}
