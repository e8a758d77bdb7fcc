/* The machine's floors, measured in the same run as everything else, so a
 * reader can tell a slow machine from a slow implementation.
 *
 *   floor syscall N          N getppid() system calls: ns per call
 *   floor memcpy BYTES N     N copies of BYTES from a shared mapping (as
 *                            ipc.shm's) into a private buffer: MB/s
 *
 * Prints {"ns_per_op":...} or {"mb_per_s":...} with "ops" and "secs". */
#include "bench.h"

#include <sys/syscall.h>

int main(int argc, char **argv) {
    const char *u = "floor syscall N | floor memcpy BYTES N";
    if (argc < 3) usage(u);
    if (!strcmp(argv[1], "syscall") && argc == 3) {
        long n = arg_long(argv[2]);
        for (long i = 0; i < warmup(n); i++) syscall(SYS_getppid);
        double t0 = now_s();
        for (long i = 0; i < n; i++) syscall(SYS_getppid);
        double secs = now_s() - t0;
        printf("{\"ns_per_op\":%.1f,\"ops\":%ld,\"secs\":%.6f,\"ok\":true}\n", secs * 1e9 / (double)n, n, secs);
        return 0;
    }
    if (!strcmp(argv[1], "memcpy") && argc == 4) {
        size_t bytes = (size_t)arg_long(argv[2]);
        long n = arg_long(argv[3]);
        char *src = shared_alloc(bytes);
        memset(src, 'x', bytes);
        char *dst = malloc(bytes);
        if (!dst) die("malloc");
        unsigned long sum = 0;
        for (long i = 0; i < warmup(n); i++) {
            memcpy(dst, src, bytes);
            sum += (unsigned char)dst[i % bytes];
        }
        double t0 = now_s();
        for (long i = 0; i < n; i++) {
            memcpy(dst, src, bytes);
            __asm__ volatile("" : : "r"(dst) : "memory"); /* keep every copy */
            sum += (unsigned char)dst[i % bytes];
        }
        double secs = now_s() - t0;
        printf("{\"mb_per_s\":%.0f,\"ops\":%ld,\"secs\":%.6f,\"ok\":%s}\n",
               (double)bytes * (double)n / secs / 1e6, n, secs, sum ? "true" : "false");
        return 0;
    }
    usage(u);
    return 2;
}
