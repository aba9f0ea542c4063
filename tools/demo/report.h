/* What the demo reports: the status line while it runs and the final check. */
#ifndef SHARDBUS_DEMO_REPORT_H
#define SHARDBUS_DEMO_REPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "consumer.h"
#include "options.h"

struct snapshot { uint64_t published, handled, alerts, eagain, latency[HIST_BUCKETS]; };

/* Samples the counters of the first nproducers producers, the handlers and the consumer. */
void take_snapshot(struct snapshot *s, unsigned nproducers);

/* One status line on stderr: the rates between two snapshots `interval` seconds apart. */
void print_status(const struct snapshot *now, const struct snapshot *before, double elapsed,
                  double interval, bool tty);

/* After sb_bus_close(): every thread joined, every value final. Prints the per-topic check and
 * the latencies on stdout; true when every event was handled exactly once and every alert
 * consumed. */
bool print_summary(const struct options *opt, double elapsed);

#endif
