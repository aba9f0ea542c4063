/*
 * server_proc.h - the C server tests' harness: run shardbusd as a child process on free ports
 * with a temporary data dir, wait until it serves, stop it (SIGTERM, exit 0 checked) or kill it
 * (SIGKILL), restart it on the same ports and data dir.
 *
 * Skips (exit 77): the daemon path is empty (target not built) or the daemon exits at once
 * saying its engine is "not implemented" (sb_server_start's -ENOSYS placeholder): until the
 * server engine lands the suite stays green, and these tests start checking by themselves once
 * it does.
 *
 * SB_TEST_BOOTSTRAP=host:port runs a test against an external Kafka-compatible broker instead
 * (parts that need to stop or restart the server are then skipped).
 *
 * Failures abort() (tests/check.h); the daemon was started with PR_SET_PDEATHSIG, so it dies
 * with the test and no stray server is left behind. The temporary folder is kept on failure
 * (its path and the daemon's log are printed).
 */
#ifndef SB_TEST_SERVER_PROC_H
#define SB_TEST_SERVER_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define SBT_MAX_EXTRA_ARGS 8

struct sbt_server {
    const char *daemon;    /* path of shardbusd */
    char dir[256];         /* temporary root: data/ and shardbusd.log inside */
    char data_dir[300];
    char log_path[300];
    uint16_t port, metrics_port;
    char bootstrap[300];   /* "127.0.0.1:PORT" (or SB_TEST_BOOTSTRAP) */
    bool external;         /* SB_TEST_BOOTSTRAP: no process of ours */
    pid_t pid;             /* 0 when not running */
    const char *extra[SBT_MAX_EXTRA_ARGS + 1]; /* more flags, NULL-terminated */
};

/** sbt_scale - SB_TEST_SCALE (a factor, default 1; 0.1 runs a tenth of the messages). */
double sbt_scale(void);
/** sbt_scaled - @n times sbt_scale(), at least @min. */
long sbt_scaled(long n, long min);

/** sbt_server_init - a temp dir and two free ports; exit 77 when @daemon is NULL or empty (and
 *  no SB_TEST_BOOTSTRAP). @extra: more flags for the daemon (NULL-terminated, may be NULL). */
void sbt_server_init(struct sbt_server *s, const char *daemon, const char *const *extra);

/** sbt_server_start - start the daemon and wait (at most 20 s) until its port accepts
 *  connections. Exits 77 when it says "not implemented"; aborts on any other early exit
 *  (after retrying a few times when the port is still taken). No-op when external. */
void sbt_server_start(struct sbt_server *s);

/** sbt_server_stop - SIGTERM, wait (at most 30 s), abort unless it exited 0. */
void sbt_server_stop(struct sbt_server *s);

/** sbt_server_kill9 - SIGKILL and reap. */
void sbt_server_kill9(struct sbt_server *s);

/** sbt_server_alive - the daemon is still running (it has not exited by itself). */
bool sbt_server_alive(struct sbt_server *s);

/** sbt_server_second_instance - run another daemon on the same data dir (other ports) and
 *  return its exit status (-1 when it had to be killed after 20 s). */
int sbt_server_second_instance(struct sbt_server *s);

/** sbt_server_cleanup - kill the daemon if running and remove the temp dir. */
void sbt_server_cleanup(struct sbt_server *s);

/** sbt_connect - a TCP connection to the server (blocking socket with 10 s send/recv
 *  timeouts), or -1. */
int sbt_connect(const struct sbt_server *s);

/** sbt_dump_log - print the daemon's log to stderr (after a failure). */
void sbt_dump_log(const struct sbt_server *s);

#endif /* SB_TEST_SERVER_PROC_H */
