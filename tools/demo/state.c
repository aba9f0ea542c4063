/* The demo's shared run state: see demo.h for who touches what. */
#include "demo.h"

struct partition_stats stats[TOPIC_COUNT][MAX_PARTITIONS];

struct producer producers[MAX_PRODUCERS];
struct alert_consumer consumer;

_Atomic bool producers_stop;
_Atomic bool consumer_stop;
_Atomic bool worker_failed;
