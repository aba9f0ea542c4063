/*
 * server_internal.h - the pieces of the Kafka server shared by its files:
 *
 *   server.c            start, stop, configuration, metrics
 *   server_net.c        each shard's sockets in its io_uring: accept, recv, send, close
 *   server_requests.c   a request frame -> a response: parsing, partition operations, answers
 *   server_partition.c  the partition operations on the owning shard: append, read, offsets,
 *                       idempotent producers' sequences
 *
 * A connection belongs to the shard that accepted it; everything in struct sb_conn and struct
 * sb_request is touched by that shard's thread only. A request's partition operations (struct
 * sb_part_op) travel to the owning shard and back through the shard rings (sb_shard_post()),
 * so each is touched by one thread at a time, handed over with the ring's release/acquire.
 */
#ifndef SB_SERVER_INTERNAL_H
#define SB_SERVER_INTERNAL_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "bus.h"
#include "histogram.h"
#include "kafka_codec.h"
#include "kafka_framer.h"
#include "report.h"
#include "server.h"
#include "shard.h"
#include "topic.h"

struct sb_server_shard;
struct sb_conn;
struct sb_request;

/* ------------------------------ partition operations ------------------------------ */

enum sb_part_op_kind { SB_OP_PRODUCE, SB_OP_FETCH, SB_OP_LIST_OFFSETS };

/** One partition's part of a request, run on the shard that owns the partition. */
struct sb_part_op {
    struct sb_request *req;        /* the request it belongs to (origin shard's) */
    struct sb_server_shard *origin; /* where it returns */
    enum sb_part_op_kind kind;
    struct sb_kslice topic_name;   /* into the request frame */
    uint32_t topic_seq;            /* which topic entry of the request it is under */
    struct sb_topic *topic;        /* NULL: unknown topic */
    int32_t partition;
    int16_t error;                 /* Kafka error code of the answer */
    bool dispatched;               /* sent to the owner and not back yet */
    /* Produce: the batch (in the request frame), its header, and the answer. */
    const unsigned char *batch;
    uint32_t batch_len;
    struct sb_batch_info info;
    int64_t base_offset;
    /* Fetch: where and how much; the answer's batches (malloc'd) and the partition's ends. */
    int64_t fetch_offset;
    int32_t max_bytes;
    unsigned char *data;
    uint32_t data_len;             /* bytes read so far, then the whole batches kept */
    int read_fd;                   /* the op's own duplicate of the segment's descriptor while
                                      its read is in flight (the owner's io_uring) */
    uint64_t read_position;
    int64_t read_segment_base;
    uint32_t read_want, read_avail;
    /* ListOffsets: the timestamp asked for; the answer in offset / timestamp. */
    int64_t timestamp;
    int64_t offset;
    /* Produce, Fetch, ListOffsets: the log's range when answered. */
    int64_t high_watermark;
    int64_t log_start_offset;
    struct sb_part_op *next_deferred; /* owner's queue of appends waiting for room */
    struct sb_part_op *next_return;   /* owner's list of ops whose return post failed */
};

/** sb_part_op_seen_end - the end a waiting Fetch @op has already seen: it waits for the
 *  partition's published end to move past this (its fetch offset, or the high watermark of
 *  its last read when that read found some data, less than min_bytes). Origin shard thread. */
static inline int64_t sb_part_op_seen_end(const struct sb_part_op *op)
{
    return op->high_watermark > op->fetch_offset ? op->high_watermark : op->fetch_offset;
}

/** sb_part_op_run - run @op on its owner (the calling shard) and send it back. Shard thread
 *  (the owner of op->topic's partition op->partition). */
void sb_part_op_run(struct sb_shard *s, void *op);

/** sb_part_op_read_done - a Fetch's read of @op completed with @res (bytes or -errno) on the
 *  owner's ring. Owner shard thread (from its network step). */
void sb_part_op_read_done(struct sb_shard *s, struct sb_part_op *op, int res);

/* user_data of the server's io_uring operations: SB_LOG_WRITER_FOREIGN | object | operation. */
enum sb_net_op {
    SB_NET_OP_NONE = 0, /* a completion nobody waits for (a cancel's) */
    SB_NET_OP_ACCEPT = 1,
    SB_NET_OP_RECV = 2,
    SB_NET_OP_SEND = 3,
    SB_NET_OP_READ = 4,
};

static inline uint64_t sb_server_op_data(void *obj, enum sb_net_op op)
{
    return SB_LOG_WRITER_FOREIGN | (uint64_t)(uintptr_t)obj | (uint64_t)op;
}

/** sb_server_partition_step - post again the ops whose return found no memory, and retry
 *  appends that waited for room in the write buffer. True when it did something. Shard
 *  thread. */
bool sb_server_partition_step(struct sb_server_shard *ss);

/** The producer id InitProducerId hands out next (unique for this data dir's lifetime). */
int64_t sb_server_next_producer_id(struct sb_server *srv);

/* ------------------------------ requests ------------------------------ */

/** A request being answered. Responses leave a connection in request order. */
struct sb_request {
    struct sb_request *next;       /* the connection's queue, oldest first */
    struct sb_conn *conn;
    unsigned char *frame;          /* the request's bytes (owned) */
    size_t frame_len;
    struct sb_kafka_request_header hdr;
    int64_t started_ns;            /* for the latency histogram */
    struct sb_part_op *ops;        /* the partition operations, in request order */
    uint32_t op_count;
    uint32_t ops_pending;          /* dispatched and not back yet */
    int16_t acks;                  /* Produce */
    bool no_response;              /* Produce with acks=0 */
    bool done;                     /* response (or no response) ready */
    bool close_after;              /* close the connection once this is reached */
    /* Fetch */
    int32_t min_bytes;
    int32_t fetch_max_bytes;       /* the request's max_bytes (at most FETCH_MAX_BYTES) */
    int64_t deadline_ns;           /* long polling until then */
    bool waiting;                  /* in the shard's waiting list */
    struct sb_request *next_waiting;
    struct sb_kwriter out;         /* the response frame(s) */
};

/**
 * sb_request_start - parse @req's frame and start answering it: at once (done), or by sending
 * partition operations to their shards. Returns 0, or -EPROTO when the connection must be
 * closed (a log line names the peer and the reason). Shard thread (the connection's).
 */
int sb_request_start(struct sb_server_shard *ss, struct sb_request *req);

/** sb_request_op_returned - @op came back from its owner (origin shard thread). */
void sb_request_op_returned(struct sb_shard *s, void *op);

/** sb_request_free - free a request and everything it holds. */
void sb_request_free(struct sb_request *req);

/** sb_requests_poll_waiting - answer or re-run the Fetch requests waiting for data whose
 *  data came or whose time ran out. True when it did something. */
bool sb_requests_poll_waiting(struct sb_server_shard *ss, int64_t now_ns);

/* ------------------------------ connections ------------------------------ */

struct sb_conn {
    struct sb_server_shard *ss;
    int fd;
    uint64_t id;
    char peer[64];                 /* "1.2.3.4:5678", for log lines */
    struct sb_kafka_framer framer;
    struct sb_request *head, *tail; /* requests in order */
    uint32_t request_count;
    /* The send in flight: iovecs over the responses of done requests at the head. */
    struct iovec iov[64];
    struct msghdr msg;
    unsigned iov_count;
    struct sb_request *sending[64];
    unsigned sending_count;
    size_t send_skip;              /* bytes of the first response already sent */
    bool send_in_flight;
    bool recv_armed;
    bool closing;                  /* no more reads; close once nothing is in flight */
    bool recv_paused;              /* too many requests queued: read again once they drain */
    bool recv_cancelled;           /* the armed recv was asked to end (recv_paused) */
    struct sb_conn *prev, *next;   /* the shard's connections */
};

/** sb_conn_request_done - @req (of @conn) is answered: send what is ready. Shard thread. */
void sb_conn_request_done(struct sb_conn *conn, struct sb_request *req);

/** sb_conn_close - stop reading @conn, answer nothing more, close once nothing is in flight.
 *  @why: logged with the peer (NULL: a normal close, not logged). */
void sb_conn_close(struct sb_conn *conn, const char *why);

/* ------------------------------ metrics ------------------------------ */

#define SB_API_SLOTS 9 /* the APIs of enum sb_kafka_api, by sb_api_slot() */

/** Index of an API key in per-API arrays, or -1. */
int sb_api_slot(int16_t api_key);

/* ------------------------------ the server ------------------------------ */

/** One shard's part of the server: its listener, connections, queues and counters. */
struct sb_server_shard {
    struct sb_server *srv;
    struct sb_shard *shard;
    /* A produced compressed batch's records, decompressed to validate them (shard thread). */
    unsigned char *inflate_buf;
    size_t inflate_cap;
    unsigned id;
    int listen_fd;
    bool accept_armed;
    bool accept_failing;           /* accepts fail (EMFILE...): logged once, until one works */
    int64_t accept_retry_ns;       /* re-arm the accept no sooner (0: at once) */
    bool stopping;                 /* stop accepting; close connections once answered */
    /* provided buffers for multishot recv */
    struct io_uring_buf_ring *buf_ring;
    unsigned char *buf_base;
    unsigned buf_count, buf_size;
    uint16_t buf_group;
    bool recv_starved;             /* a recv ended for want of buffers: re-arm later */
    bool sweep_closing;            /* a connection was closed: net_step() frees the idle ones */
    struct sb_conn *conns;
    uint32_t conn_count;
    struct sb_request *waiting;    /* Fetch requests long polling */
    struct sb_part_op *deferred_head, *deferred_tail; /* appends waiting for room */
    /* Ops of other shards' requests done here whose return post found no memory (the ring
     * full and no overflow node): posted again by sb_server_partition_step(), never lost. */
    struct sb_part_op *returns_head, *returns_tail;
    bool oom_reported;             /* the out-of-memory episode was logged */
    uint32_t reads_in_flight;      /* Fetch reads on this shard's ring (any shard's requests) */
    struct sb_shard_service service;
    int setup_error;
    /* Counters (single writer, this shard: relaxed). */
    _Atomic uint64_t connections_accepted, connections_closed, connections_refused;
    _Atomic uint64_t bytes_received, bytes_sent, protocol_errors;
    _Atomic uint64_t requests[SB_API_SLOTS];
    struct sb_latency_histogram latency[SB_API_SLOTS];
};

struct sb_server {
    struct sb_bus *bus;
    struct sb_server_config cfg;
    char *listen_host, *advertised_host;
    uint16_t advertised_port;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    struct sb_server_shard **shards; /* bus->shard_count */
    _Atomic uint32_t open_connections; /* all shards: the max_connections limit */
    _Atomic int64_t next_producer_id;
    /* CreateTopics / DeleteTopics threads still running: sb_server_stop() waits for them
     * (they end by writing to a shard's eventfd, which must still be open). */
    _Atomic uint32_t admin_threads;
    _Atomic uint64_t next_conn_id;
};

/** sb_server_log - a log line through cfg.log_fn (printf-style). Any thread. */
#define sb_server_log(srv, level, ...) sb_report((srv)->cfg.log_fn, (srv)->cfg.log_ctx, level, __VA_ARGS__)

/** sb_server_net_start - the calling shard's listener, buffers and service (shard thread,
 *  through sb_shard_call()). Returns 0 or a negative errno. */
int sb_server_net_start(struct sb_shard *s, void *ss);

/** sb_server_net_stop - stop accepting and close connections once answered (shard thread). */
int sb_server_net_stop(struct sb_shard *s, void *ss);

/** sb_server_net_finish - close what is answered; 1 when the shard's part is quiet (no
 *  connection, accept, deferred append or disk read left), else 0. The service stays attached:
 *  once every shard is quiet in one round, nothing can reach any of them any more (operations
 *  only come from connections, and no shard accepts) and sb_server_net_detach() runs on each
 *  (shard thread). */
int sb_server_net_finish(struct sb_shard *s, void *ss);

/** sb_server_net_detach - free the shard's buffers and detach its service. 0, or -EBUSY when
 *  the shard is not quiet (shard thread). */
int sb_server_net_detach(struct sb_shard *s, void *ss);

/** sb_now_ns - CLOCK_MONOTONIC in nanoseconds. */
int64_t sb_now_ns(void);

#endif /* SB_SERVER_INTERNAL_H */
