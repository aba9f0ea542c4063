/*
 * main.c - shardbusd: startup, signals, shutdown.
 *
 * Startup: block SIGTERM, SIGINT and SIGHUP before any thread exists (every thread inherits
 * the mask, so only this thread ever takes them, through sigwaitinfo()), ignore SIGPIPE, read
 * the settings, open the bus on the data dir, start the Kafka server, start the metrics
 * listener, log "listening on HOST:PORT". Then wait for a signal.
 *
 * SIGTERM / SIGINT: stop the metrics listener, stop the server (no new connections; requests
 * in flight are finished and answered), close the bus (everything flushed and synced), exit 0.
 * A second SIGTERM / SIGINT while that runs ends the process at once (the log recovers at the
 * next start), as does the supervisor's SIGKILL (systemd: TimeoutStopSec). SIGHUP is
 * logged and ignored: there is no reload, a new config takes a restart.
 *
 * Exit status: 0 clean stop (and --help, --version, --check-config), 1 startup or runtime
 * error, 2 usage or config error.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shardbus.h>

#include "log.h"
#include "metrics_http.h"
#include "options.h"
#include "server.h"

#define SBD_STR2(x) #x
#define SBD_STR(x) SBD_STR2(x)
#define SBD_VERSION_TEXT                                                                            \
    SBD_STR(SB_VERSION_MAJOR) "." SBD_STR(SB_VERSION_MINOR) "." SBD_STR(SB_VERSION_PATCH)

static int render_metrics(void *ctx, char **text, size_t *len)
{
    return sb_server_metrics(ctx, text, len);
}

static void log_startup(const struct sbd_options *o)
{
    char listen[SBD_HOST_MAX + 16], metrics[SBD_HOST_MAX + 16];
    char shards[32];
    if (o->bus.shards)
        snprintf(shards, sizeof(shards), "%u", o->bus.shards);
    else
        snprintf(shards, sizeof(shards), "one per CPU");
    sbd_log(SB_LOG_INFO,
            "shardbusd %s starting: listen %s, data dir %s, shards %s, durability %s, "
            "metrics %s%s%s",
            SBD_VERSION_TEXT,
            sbd_format_hostport(listen, sizeof(listen), o->listen_host, o->server.listen_port),
            o->data_dir, shards, sbd_durability_name(o->bus.durability),
            o->metrics_enabled
                ? sbd_format_hostport(metrics, sizeof(metrics), o->metrics_host, o->metrics_port)
                : "off",
            o->config_path[0] ? ", config " : "", o->config_path);
}

/* Close the bus after a failed start, logging what goes wrong. */
static void close_bus(struct sb_bus *bus)
{
    int rc = sb_bus_close(bus);
    if (rc)
        sbd_log(SB_LOG_ERROR, "closing the bus: %s", strerror(-rc));
}

static int run(const struct sbd_options *o, const sigset_t *signals)
{
    char listen[SBD_HOST_MAX + 16], metrics[SBD_HOST_MAX + 16];
    sbd_format_hostport(listen, sizeof(listen), o->listen_host, o->server.listen_port);
    log_startup(o);

    struct sb_bus *bus;
    int rc = sb_bus_open(&o->bus, &bus);
    if (rc == -EBUSY || rc == -EWOULDBLOCK) {
        sbd_log(SB_LOG_ERROR, "data dir %s is in use by another shardbus process", o->data_dir);
        return 1;
    }
    if (rc) {
        sbd_log(SB_LOG_ERROR, "opening the bus on data dir %s: %s", o->data_dir, strerror(-rc));
        return 1;
    }
    sbd_log(SB_LOG_INFO, "bus open: data dir %s, %u shards", o->data_dir, sb_bus_shards(bus));

    struct sb_server *srv;
    rc = sb_server_start(bus, &o->server, &srv);
    if (rc) {
        sbd_log(SB_LOG_ERROR, "starting the Kafka server on %s: %s", listen, strerror(-rc));
        close_bus(bus);
        return 1;
    }

    struct sbd_metrics_http *http = NULL;
    if (o->metrics_enabled) {
        struct sbd_metrics_http_config mc = {.host = o->metrics_host, .port = o->metrics_port,
                                             .render = render_metrics, .render_ctx = srv};
        rc = sbd_metrics_http_start(&mc, &http);
        if (rc) {
            sbd_log(SB_LOG_ERROR, "starting the metrics listener on %s: %s",
                    sbd_format_hostport(metrics, sizeof(metrics), o->metrics_host,
                                        o->metrics_port),
                    strerror(-rc));
            sb_server_stop(srv);
            close_bus(bus);
            return 1;
        }
        sbd_log(SB_LOG_INFO, "metrics on http://%s/metrics",
                sbd_format_hostport(metrics, sizeof(metrics), o->metrics_host,
                                    sbd_metrics_http_port(http)));
    }
    sbd_log(SB_LOG_INFO, "listening on %s", listen);

    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(signals, &info);
        if (sig < 0) {
            if (errno == EINTR)
                continue;
            sbd_log(SB_LOG_ERROR, "sigwaitinfo: %s; shutting down", strerror(errno));
            break;
        }
        if (sig == SIGHUP) {
            sbd_log(SB_LOG_WARN, "SIGHUP ignored: no reload, restart to apply a new config");
            continue;
        }
        const char *name = sig == SIGTERM ? "SIGTERM" : "SIGINT";
        if (info.si_code == SI_USER)
            sbd_log(SB_LOG_INFO, "%s from pid %ld: shutting down (a second one exits at once)",
                    name, (long)info.si_pid);
        else
            sbd_log(SB_LOG_INFO, "%s: shutting down (a second one exits at once)", name);
        break;
    }
    /* A second SIGTERM or SIGINT during the shutdown takes the default action (the process
     * ends at once; the log recovers at the next start): for an operator whose shutdown hangs
     * on a stuck disk. Only this thread unblocks them, so only it can take them. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_UNBLOCK, &stop_signals, NULL);

    if (http) {
        sbd_metrics_http_stop(http);
        sbd_log(SB_LOG_INFO, "metrics listener stopped");
    }
    sbd_log(SB_LOG_INFO, "stopping the Kafka server (finishing requests in flight)");
    rc = sb_server_stop(srv);
    if (rc)
        sbd_log(SB_LOG_ERROR, "stopping the Kafka server: %s", strerror(-rc));
    sbd_log(SB_LOG_INFO, "closing the bus (flush and sync of data dir %s)", o->data_dir);
    rc = sb_bus_close(bus);
    if (rc) {
        sbd_log(SB_LOG_ERROR, "closing the bus: %s", strerror(-rc));
        return 1;
    }
    sbd_log(SB_LOG_INFO, "stopped");
    return 0;
}

int main(int argc, char **argv)
{
    /* Before any thread: the shard threads, the server's and the metrics listener inherit this
     * mask, so the signals wait for sigwaitinfo() in this thread. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    int rc = pthread_sigmask(SIG_BLOCK, &signals, NULL);
    if (rc) {
        fprintf(stderr, "shardbusd: blocking signals: %s\n", strerror(rc));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);

    static struct sbd_options opt; /* large (paths, CPU lists): not on the stack */
    char err[1024];
    if (sbd_options_parse(&opt, argc, argv, err, sizeof(err))) {
        fprintf(stderr, "shardbusd: %s\n", err);
        return 2;
    }
    switch (opt.action) {
    case SBD_HELP:
        sbd_options_usage(stdout);
        return 0;
    case SBD_VERSION:
        printf("shardbusd %s\n", SBD_VERSION_TEXT);
        return 0;
    case SBD_CHECK_CONFIG:
        sbd_options_print(&opt, stdout);
        return 0;
    case SBD_RUN:
        break;
    }
    opt.bus.log_fn = sbd_log_fn;
    opt.server.log_fn = sbd_log_fn;
    return run(&opt, &signals);
}
