/*
 * cpu_meter.c - process CPU time from getrusage() and /proc/PID/stat (see cpu_meter.h).
 */
#define _GNU_SOURCE
#include "cpu_meter.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static double seconds(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* utime + stime of process @pid, in seconds; 0 or a negative errno. */
static int proc_cpu(int pid, double *out)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -errno;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name (field 2) is in parentheses and may hold spaces or ')': the fields
     * that follow start after the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -EPROTO;
    p++;
    /* Fields 3 (state) to 13 come first; utime and stime are fields 14 and 15, in ticks. */
    unsigned long long utime = 0, stime = 0;
    char *save = NULL;
    int field = 3, found = 0;
    for (char *tok = strtok_r(p, " ", &save); tok && found < 2;
         tok = strtok_r(NULL, " ", &save), field++) {
        if (field == 14) {
            utime = strtoull(tok, NULL, 10);
            found++;
        } else if (field == 15) {
            stime = strtoull(tok, NULL, 10);
            found++;
        }
    }
    if (found != 2)
        return -EPROTO;
    long hz = sysconf(_SC_CLK_TCK);
    *out = (double)(utime + stime) / (double)(hz > 0 ? hz : 100);
    return 0;
}

int bench_cpu_sample(int server_pid, struct bench_cpu_sample *out)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    out->self_s = seconds(ru.ru_utime) + seconds(ru.ru_stime);
    out->server_s = -1;
    if (server_pid <= 0)
        return 0;
    int rc = proc_cpu(server_pid, &out->server_s);
    if (rc)
        out->server_s = -1;
    return rc;
}
