/*
 * The demo's shared run state, defined in state.c. Each object is here because more than one
 * concern touches it; who writes and who reads each, and with which ordering, is said below and
 * at every atomic access. Everything else is passed by pointer or stays static in its file.
 */
#ifndef SHARDBUS_DEMO_DEMO_H
#define SHARDBUS_DEMO_DEMO_H

#include <stdatomic.h>
#include <stdbool.h>

#include "consumer.h"
#include "events.h"
#include "handlers.h"
#include "producers.h"

/* Per topic and partition: written by the handlers (sb_handler_add() passes each row as ctx),
 * sampled by main and the status line while the bus runs, tallied after sb_bus_close(). */
extern struct partition_stats stats[TOPIC_COUNT][MAX_PARTITIONS];

/* Set up by main, run by the worker threads, read by the status line and the final summary. */
extern struct producer producers[MAX_PRODUCERS];
extern struct alert_consumer consumer;

extern _Atomic bool producers_stop; /* set by main when the run ends */
extern _Atomic bool consumer_stop;  /* set by main once every alert arrived */
extern _Atomic bool worker_failed;  /* set by a producer or the consumer on a library error */

#endif
