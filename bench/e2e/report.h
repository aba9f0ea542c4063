/*
 * report.h - the results of one run, as text on stdout and as JSON.
 */
#ifndef BENCH_REPORT_H
#define BENCH_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "histogram.h"
#include "options.h"

struct bench_result {
    uint64_t sent;          /* messages handed to the clients, over all producers */
    uint64_t send_failed;   /* refused by the system or given up by the client */
    uint64_t received;      /* first arrivals over all consumers (each consumer gets all) */
    uint64_t lost;          /* over all consumers: sent but never received */
    uint64_t duplicated;    /* arrivals of a message already received by that consumer */
    uint64_t corrupt;       /* wrong size, magic, producer or pattern */
    int errors;             /* client calls that failed */
    /* The rates count only what was stamped after the warm-up, over the time from its end: */
    uint64_t sent_measured;
    uint64_t received_measured;
    double send_seconds;    /* from the end of the warm-up to the last publish call */
    double receive_seconds; /* from the end of the warm-up to the last measured arrival */
    const struct bench_hist *latency; /* after the warm-up, ns, publish call (or scheduled time) -> receipt */
    /* CPU time from the end of the warm-up until every consumer is done (cpu_meter.h): */
    double cpu_window_s;    /* wall seconds of that span */
    double client_cpu_s;    /* this process: producers, consumers, client library threads */
    double server_cpu_s;    /* the server process (--server-pid); < 0 when not measured */
    char date[32];          /* UTC, ISO 8601 */
    int ok;                 /* 1: every message arrived exactly once, intact */
};

/**
 * bench_report_print - the human-readable summary of @r on @f.
 */
void bench_report_print(FILE *f, const struct bench_options *o, const struct bench_result *r);

/**
 * bench_report_json - write @o and @r as one JSON object to @path.
 * Returns 0 or -errno (the file could not be written).
 */
int bench_report_json(const char *path, const struct bench_options *o, const struct bench_result *r);

#endif
