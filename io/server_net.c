/*
 * server_net.c - one shard's sockets, in the shard's own io_uring (the one that writes its log;
 * see log_writer.h for how the two share it).
 *
 * Each shard has a listener bound with SO_REUSEPORT to the server's address (the kernel spreads
 * new connections over the shards) and one multishot accept on it. Each connection has one
 * multishot recv taking buffers from the shard's provided-buffer ring; the bytes go to the
 * connection's framer, each whole request to server_requests.c. Answers leave in request order:
 * one sendmsg at a time per connection gathers every answer ready at the head of its queue.
 *
 * user_data of our operations: SB_LOG_WRITER_FOREIGN | object pointer | operation (low 3 bits;
 * the objects are 8-byte aligned).
 *
 * A connection is closed by shutting its socket down: the recv then ends, and the connection is
 * freed once no recv, send or partition operation of it is in flight any more.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "server_internal.h"
#include "shard_log.h"

/* Our operations (see sb_server_op_data()). */
#define OP_ACCEPT SB_NET_OP_ACCEPT
#define OP_RECV SB_NET_OP_RECV
#define OP_SEND SB_NET_OP_SEND

#define RECV_BUFFERS 256u      /* per shard; a power of two */
#define RECV_BUFFER_BYTES 16384u
/* Requests queued per connection: at this many the connection's recv is cancelled and its
 * bytes stay in the socket (TCP flow control then holds the client back) until the queue is
 * down to half; frames already received wait in the framer meanwhile. */
#define MAX_QUEUED_REQUESTS 4096u

int64_t sb_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t op_data(void *obj, enum sb_net_op op)
{
    return sb_server_op_data(obj, op);
}

static struct io_uring_sqe *net_sqe(struct sb_server_shard *ss)
{
    return sb_log_writer_get_sqe(&ss->shard->writer);
}

/* ------------------------------ accept ------------------------------ */

/* After a failed accept (EMFILE, ENFILE, ENOMEM...) the next try waits this long: re-arming
 * at once would fail again on every turn of the loop. */
#define ACCEPT_RETRY_NS (100 * 1000000LL)

static void arm_accept(struct sb_server_shard *ss)
{
    if (ss->accept_armed || ss->stopping || ss->listen_fd < 0)
        return;
    if (ss->accept_retry_ns && sb_now_ns() < ss->accept_retry_ns)
        return; /* backing off: net_timeout_ns() wakes the shard then */
    ss->accept_retry_ns = 0;
    struct io_uring_sqe *sqe = net_sqe(ss);
    if (!sqe)
        return; /* retried by the next step */
    io_uring_prep_multishot_accept(sqe, ss->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, op_data(ss, OP_ACCEPT));
    ss->accept_armed = true;
}

static void arm_recv(struct sb_conn *c)
{
    if (c->recv_armed || c->closing || c->recv_paused)
        return;
    struct io_uring_sqe *sqe = net_sqe(c->ss);
    if (!sqe) {
        c->ss->recv_starved = true; /* retried by the next step */
        return;
    }
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = c->ss->buf_group;
    io_uring_sqe_set_data64(sqe, op_data(c, OP_RECV));
    c->recv_armed = true;
}

static void peer_name(int fd, char *buf, size_t cap)
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof(sa);
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (getpeername(fd, (struct sockaddr *)&sa, &len) == 0) {
        if (sa.ss_family == AF_INET) {
            const struct sockaddr_in *in = (const struct sockaddr_in *)&sa;
            inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
            port = ntohs(in->sin_port);
        } else if (sa.ss_family == AF_INET6) {
            const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&sa;
            inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
            port = ntohs(in6->sin6_port);
        }
    }
    snprintf(buf, cap, sa.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
}

static void on_accept(struct sb_server_shard *ss, const struct io_uring_cqe *cqe)
{
    if (!(cqe->flags & IORING_CQE_F_MORE))
        ss->accept_armed = false;
    if (cqe->res < 0) {
        if (ss->stopping || cqe->res == -ECANCELED || cqe->res == -EINVAL ||
            cqe->res == -EBADF)
            return; /* the listener was closed (stop) */
        /* Logged once per burst of failures; tried again in ACCEPT_RETRY_NS. */
        if (!ss->accept_failing)
            sb_server_log(ss->srv, SB_LOG_WARN,
                          "shard %u: accept failed: %s (retrying every %lld ms until it works)",
                          ss->id, strerror(-cqe->res), ACCEPT_RETRY_NS / 1000000);
        ss->accept_failing = true;
        if (!ss->accept_armed)
            ss->accept_retry_ns = sb_now_ns() + ACCEPT_RETRY_NS;
        return;
    }
    int fd = cqe->res;
    struct sb_server *srv = ss->srv;
    if (ss->accept_failing) {
        sb_server_log(srv, SB_LOG_INFO, "shard %u: accepting connections again", ss->id);
        ss->accept_failing = false;
    }
    if (ss->stopping) {
        close(fd);
        return;
    }
    /* Relaxed: a count for a limit, no data published through it. */
    uint32_t open = atomic_fetch_add_explicit(&srv->open_connections, 1, memory_order_relaxed);
    if (open >= srv->cfg.max_connections) {
        atomic_fetch_sub_explicit(&srv->open_connections, 1, memory_order_relaxed);
        char peer[64];
        peer_name(fd, peer, sizeof(peer));
        sb_server_log(srv, SB_LOG_WARN,
                      "connection from %s refused: %u connections open (max_connections)", peer,
                      open);
        atomic_fetch_add_explicit(&ss->connections_refused, 1, memory_order_relaxed);
        close(fd);
        return;
    }
    struct sb_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        atomic_fetch_sub_explicit(&srv->open_connections, 1, memory_order_relaxed);
        close(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->ss = ss;
    c->fd = fd;
    /* Relaxed: only needs to be unique. */
    c->id = atomic_fetch_add_explicit(&srv->next_conn_id, 1, memory_order_relaxed);
    peer_name(fd, c->peer, sizeof(c->peer));
    sb_kafka_framer_init(&c->framer, srv->cfg.max_request_bytes);
    c->next = ss->conns;
    if (ss->conns)
        ss->conns->prev = c;
    ss->conns = c;
    ss->conn_count++;
    atomic_fetch_add_explicit(&ss->connections_accepted, 1, memory_order_relaxed);
    arm_recv(c);
}

/* ------------------------------ closing ------------------------------ */

static bool conn_busy(const struct sb_conn *c)
{
    if (c->recv_armed || c->send_in_flight)
        return true;
    for (const struct sb_request *r = c->head; r; r = r->next)
        if (r->ops_pending)
            return true;
    return false;
}

/* Free @c when closing and nothing of it is in flight. */
static void conn_maybe_free(struct sb_conn *c)
{
    if (!c->closing || conn_busy(c))
        return;
    struct sb_server_shard *ss = c->ss;
    while (c->head) {
        struct sb_request *r = c->head;
        c->head = r->next;
        if (r->waiting) {
            struct sb_request **pp = &ss->waiting;
            while (*pp && *pp != r)
                pp = &(*pp)->next_waiting;
            if (*pp)
                *pp = r->next_waiting;
        }
        sb_request_free(r);
    }
    close(c->fd);
    sb_kafka_framer_free(&c->framer);
    if (c->prev)
        c->prev->next = c->next;
    else
        ss->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    ss->conn_count--;
    atomic_fetch_sub_explicit(&ss->srv->open_connections, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&ss->connections_closed, 1, memory_order_relaxed);
    free(c);
}

void sb_conn_close(struct sb_conn *c, const char *why)
{
    if (why) {
        sb_server_log(c->ss->srv, SB_LOG_WARN, "connection %s closed: %s", c->peer, why);
        atomic_fetch_add_explicit(&c->ss->protocol_errors, 1, memory_order_relaxed);
    }
    if (!c->closing) {
        c->closing = true;
        /* Ends the multishot recv (and any send) in flight. */
        shutdown(c->fd, SHUT_RDWR);
    }
    /* Never freed here: callers up the stack may still hold c. It is freed at the end of a
     * completion handler or by net_step()'s sweep, once nothing of it is in flight. */
    c->ss->sweep_closing = true;
}

/* ------------------------------ sending ------------------------------ */

static void conn_try_send(struct sb_conn *c)
{
    if (c->send_in_flight || (c->closing && !c->head))
        return;
    c->iov_count = 0;
    c->sending_count = 0;
    size_t skip = c->send_skip;
    const size_t iov_max = sizeof(c->iov) / sizeof(c->iov[0]);
    for (struct sb_request *r = c->head; r && r->done && c->iov_count < iov_max; r = r->next) {
        if (r->no_response || sb_kwriter_wire_len(&r->out) == 0)
            continue; /* freed below once everything before it is sent */
        /* The response's buffer and the fetched batches it refers to; one that does not fit
         * whole goes on in the next sendmsg (on_send() counts what was sent). */
        c->iov_count += sb_kwriter_iov(&r->out, skip, c->iov + c->iov_count,
                                       iov_max - c->iov_count);
        c->sending[c->sending_count++] = r;
        skip = 0;
        if (r->close_after)
            break;
    }
    /* Requests at the head answered with nothing to send (acks=0) go now. */
    while (c->head && c->head->done &&
           (c->head->no_response || sb_kwriter_wire_len(&c->head->out) == 0) &&
           (c->sending_count == 0 || c->head != c->sending[0])) {
        struct sb_request *r = c->head;
        bool close_after = r->close_after;
        c->head = r->next;
        if (!c->head)
            c->tail = NULL;
        c->request_count--;
        sb_request_free(r);
        if (close_after) {
            sb_conn_close(c, NULL);
            return;
        }
    }
    if (c->iov_count == 0 || c->closing)
        return;
    struct io_uring_sqe *sqe = net_sqe(c->ss);
    if (!sqe) {
        sb_conn_close(c, "out of submission queue entries");
        return;
    }
    memset(&c->msg, 0, sizeof(c->msg));
    c->msg.msg_iov = c->iov;
    c->msg.msg_iovlen = c->iov_count;
    io_uring_prep_sendmsg(sqe, c->fd, &c->msg, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, op_data(c, OP_SEND));
    c->send_in_flight = true;
}

static void conn_resume_recv(struct sb_conn *c);

static void on_send(struct sb_conn *c, int res)
{
    c->send_in_flight = false;
    if (res < 0) {
        if (!c->closing)
            sb_conn_close(c, res == -EPIPE || res == -ECONNRESET ? NULL : "send failed");
        conn_maybe_free(c);
        return;
    }
    atomic_fetch_add_explicit(&c->ss->bytes_sent, (uint64_t)res, memory_order_relaxed);
    size_t sent = (size_t)res;
    bool close_now = false;
    /* Retire the requests whose responses went out whole. */
    while (c->head && c->head->done) {
        struct sb_request *r = c->head;
        if (!r->no_response && sb_kwriter_wire_len(&r->out)) {
            size_t left = sb_kwriter_wire_len(&r->out) - c->send_skip;
            if (sent < left) {
                c->send_skip += sent;
                break;
            }
            sent -= left;
            c->send_skip = 0;
        }
        c->head = r->next;
        if (!c->head)
            c->tail = NULL;
        c->request_count--;
        close_now = r->close_after;
        sb_request_free(r);
        if (close_now)
            break;
    }
    if (close_now || c->closing) {
        sb_conn_close(c, NULL);
        conn_maybe_free(c); /* the end of a completion handler: nothing above holds c */
        return;
    }
    if (c->recv_paused && c->request_count < MAX_QUEUED_REQUESTS / 2) {
        conn_resume_recv(c);
        if (c->closing) {
            conn_maybe_free(c); /* the end of a completion handler */
            return;
        }
    }
    conn_try_send(c);
}

void sb_conn_request_done(struct sb_conn *c, struct sb_request *req)
{
    req->done = true;
    if (c->closing) {
        c->ss->sweep_closing = true; /* freed by net_step()'s sweep once idle */
        return;
    }
    if (req == c->head)
        conn_try_send(c);
}

/* ------------------------------ receiving ------------------------------ */

static void conn_take_frames(struct sb_conn *c)
{
    const unsigned char *frame;
    size_t len;
    int rc = 0;
    while (!c->closing && c->request_count < MAX_QUEUED_REQUESTS &&
           (rc = sb_kafka_framer_next(&c->framer, &frame, &len)) == 1) {
        struct sb_request *req = calloc(1, sizeof(*req));
        unsigned char *copy = malloc(len ? len : 1);
        if (!req || !copy) {
            free(req);
            free(copy);
            sb_conn_close(c, "out of memory");
            return;
        }
        memcpy(copy, frame, len);
        sb_kafka_framer_consume(&c->framer);
        req->conn = c;
        req->frame = copy;
        req->frame_len = len;
        req->started_ns = sb_now_ns();
        sb_kwriter_init(&req->out);
        if (c->tail)
            c->tail->next = req;
        else
            c->head = req;
        c->tail = req;
        c->request_count++;
        if (sb_request_start(c->ss, req) < 0) {
            sb_conn_close(c, NULL); /* sb_request_start logged why */
            return;
        }
        /* A request answered at once was already handed to sending (and, with no answer to
         * send, may be freed): req is not touched again here. */
    }
    if (c->closing)
        return;
    if (rc == -EMSGSIZE) {
        char why[96];
        snprintf(why, sizeof(why), "request larger than max_request_bytes (%zu)",
                 c->ss->srv->cfg.max_request_bytes);
        sb_conn_close(c, why);
    } else if (rc == -EBADMSG) {
        sb_conn_close(c, "malformed request size");
    } else if (rc == -ENOMEM) {
        sb_conn_close(c, "out of memory");
    }
}

/* Too many requests queued: stop reading @c. Its multishot recv would go on delivering, so it
 * is cancelled (the cancel's own completion is ignored; the recv ends with -ECANCELED). When
 * no SQE is free now, the next recv completion tries again. */
static void conn_pause_recv(struct sb_conn *c)
{
    c->recv_paused = true;
    if (!c->recv_armed || c->recv_cancelled)
        return;
    struct io_uring_sqe *sqe = net_sqe(c->ss);
    if (!sqe)
        return;
    io_uring_prep_cancel64(sqe, op_data(c, OP_RECV), 0);
    io_uring_sqe_set_data64(sqe, op_data(NULL, SB_NET_OP_NONE));
    c->recv_cancelled = true;
}

/* The queue drained to half: take the frames received meanwhile, then read again. */
static void conn_resume_recv(struct sb_conn *c)
{
    c->recv_paused = false;
    conn_take_frames(c);
    if (c->closing)
        return;
    if (c->request_count >= MAX_QUEUED_REQUESTS)
        conn_pause_recv(c);
    else
        arm_recv(c);
}

static void recycle_buffer(struct sb_server_shard *ss, unsigned bid)
{
    io_uring_buf_ring_add(ss->buf_ring, ss->buf_base + (size_t)bid * ss->buf_size, ss->buf_size,
                          (unsigned short)bid, io_uring_buf_ring_mask(ss->buf_count), 0);
    io_uring_buf_ring_advance(ss->buf_ring, 1);
}

static void on_recv(struct sb_conn *c, const struct io_uring_cqe *cqe)
{
    struct sb_server_shard *ss = c->ss;
    if (!(cqe->flags & IORING_CQE_F_MORE))
        c->recv_armed = c->recv_cancelled = false;
    if (cqe->res > 0 && (cqe->flags & IORING_CQE_F_BUFFER)) {
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        atomic_fetch_add_explicit(&ss->bytes_received, (uint64_t)cqe->res, memory_order_relaxed);
        /* Stopping: requests already received are answered, newer bytes are not read. */
        int rc = c->closing || ss->stopping ? 0
                            : sb_kafka_framer_feed(&c->framer,
                                                   ss->buf_base + (size_t)bid * ss->buf_size,
                                                   (size_t)cqe->res);
        recycle_buffer(ss, bid);
        if (rc)
            sb_conn_close(c, "out of memory");
        else
            conn_take_frames(c);
        if (!c->closing && c->request_count >= MAX_QUEUED_REQUESTS)
            conn_pause_recv(c);
    } else if (cqe->res == -ENOBUFS) {
        ss->recv_starved = true; /* every buffer in use: re-armed by the next step */
    } else if (cqe->res == -ECANCELED) {
        /* Our conn_pause_recv(): not an end of stream (a close shuts the socket down). */
    } else if (cqe->res == 0 || cqe->res < 0) {
        /* End of stream, reset, or our own shutdown. */
        if (!c->closing) {
            c->closing = true;
            shutdown(c->fd, SHUT_RDWR);
        }
    }
    if (!c->recv_armed && !c->closing && !c->recv_paused && cqe->res != -ENOBUFS)
        arm_recv(c);
    conn_maybe_free(c);
}

/* ------------------------------ the service ------------------------------ */

static bool net_step(struct sb_shard *s, void *ctx)
{
    struct sb_server_shard *ss = ctx;
    bool work = false;
    sb_log_writer_reap(&s->writer);
    size_t n;
    const struct io_uring_cqe *cqes = sb_log_writer_take_foreign(&s->writer, &n);
    for (size_t i = 0; i < n; i++) {
        uint64_t data = cqes[i].user_data & ~SB_LOG_WRITER_FOREIGN;
        void *obj = (void *)(uintptr_t)(data & ~(uint64_t)7);
        switch ((enum sb_net_op)(data & 7)) {
        case SB_NET_OP_NONE:
            break;
        case OP_ACCEPT:
            on_accept(obj, &cqes[i]);
            break;
        case OP_RECV:
            on_recv(obj, &cqes[i]);
            break;
        case OP_SEND:
            on_send(obj, cqes[i].res);
            break;
        case SB_NET_OP_READ:
            sb_part_op_read_done(s, obj, cqes[i].res);
            break;
        }
    }
    work = n > 0;
    if (s->writer.foreign_stalled) {
        /* A completion could not be copied out (out of memory): it waits in the queue and is
         * taken by a later reap. Said once per episode. */
        if (!ss->oom_reported)
            sb_server_log(ss->srv, SB_LOG_ERROR,
                          "shard %u: out of memory in the network loop: completions wait in "
                          "the queue", ss->id);
        ss->oom_reported = true;
        s->writer.foreign_stalled = false;
    } else if (n > 0) {
        ss->oom_reported = false;
    }
    if (ss->recv_starved) {
        ss->recv_starved = false;
        for (struct sb_conn *c = ss->conns; c; c = c->next)
            arm_recv(c);
    }
    arm_accept(ss);
    if (ss->sweep_closing) {
        /* Connections closed from inside request handling: free those with nothing in flight
         * now (the rest are freed by their last completion). */
        ss->sweep_closing = false;
        for (struct sb_conn *c = ss->conns, *next; c; c = next) {
            next = c->next;
            conn_maybe_free(c);
        }
    }
    work |= sb_server_partition_step(ss);
    if (ss->waiting)
        work |= sb_requests_poll_waiting(ss, sb_now_ns());
    return work;
}

static bool net_has_work(struct sb_shard *s, void *ctx)
{
    struct sb_server_shard *ss = ctx;
    /* Completions of ours already reaped (by the log's polling) wait for net_step(). */
    if (s->writer.foreign_count)
        return true;
    if (ss->deferred_head && !s->in_flight)
        return true;
    if (ss->returns_head) /* operations to send back, waiting for memory */
        return true;
    /* Waiting Fetches: register for a wake-up when their partitions grow, then look. */
    for (struct sb_request *r = ss->waiting; r; r = r->next_waiting)
        for (uint32_t i = 0; i < r->op_count; i++) {
            struct sb_part_op *op = &r->ops[i];
            if (op->topic && !op->error &&
                sb_partition_watch_end(s, &op->topic->partitions[op->partition],
                                       sb_part_op_seen_end(op)))
                return true;
        }
    return false;
}

static int64_t net_timeout_ns(struct sb_shard *s, void *ctx)
{
    struct sb_server_shard *ss = ctx;
    (void)s;
    if (!ss->waiting && !ss->accept_retry_ns)
        return -1;
    int64_t now = sb_now_ns(), first = INT64_MAX;
    if (ss->accept_retry_ns)
        first = ss->accept_retry_ns;
    for (struct sb_request *r = ss->waiting; r; r = r->next_waiting)
        if (r->deadline_ns < first)
            first = r->deadline_ns;
    return first > now ? first - now : 0;
}

/* ------------------------------ start and stop ------------------------------ */

static int setup_buffers(struct sb_server_shard *ss)
{
    ss->buf_count = RECV_BUFFERS;
    ss->buf_size = RECV_BUFFER_BYTES;
    ss->buf_group = 0;
    size_t ring_bytes = ss->buf_count * sizeof(struct io_uring_buf);
    void *ring = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ring == MAP_FAILED)
        return -ENOMEM;
    ss->buf_ring = ring;
    ss->buf_base = malloc((size_t)ss->buf_count * ss->buf_size);
    if (!ss->buf_base)
        return -ENOMEM;
    io_uring_buf_ring_init(ss->buf_ring);
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof(reg));
    reg.ring_addr = (unsigned long)(uintptr_t)ss->buf_ring;
    reg.ring_entries = ss->buf_count;
    reg.bgid = ss->buf_group;
    int rc = io_uring_register_buf_ring(&ss->shard->writer.ring, &reg, 0);
    if (rc)
        return rc;
    for (unsigned i = 0; i < ss->buf_count; i++)
        io_uring_buf_ring_add(ss->buf_ring, ss->buf_base + (size_t)i * ss->buf_size, ss->buf_size,
                              (unsigned short)i, io_uring_buf_ring_mask(ss->buf_count), (int)i);
    io_uring_buf_ring_advance(ss->buf_ring, (int)ss->buf_count);
    return 0;
}

static void free_buffers(struct sb_server_shard *ss)
{
    if (ss->buf_ring) {
        io_uring_unregister_buf_ring(&ss->shard->writer.ring, ss->buf_group);
        munmap(ss->buf_ring, ss->buf_count * sizeof(struct io_uring_buf));
        ss->buf_ring = NULL;
    }
    free(ss->buf_base);
    ss->buf_base = NULL;
}

static int open_listener(struct sb_server_shard *ss)
{
    const struct sb_server *srv = ss->srv;
    int fd = socket(srv->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
        bind(fd, (const struct sockaddr *)&srv->addr, srv->addr_len) || listen(fd, 1024)) {
        int err = -errno;
        close(fd);
        return err;
    }
    ss->listen_fd = fd;
    return 0;
}

int sb_server_net_start(struct sb_shard *s, void *arg)
{
    struct sb_server_shard *ss = arg;
    ss->shard = s;
    ss->listen_fd = -1;
    int rc = open_listener(ss);
    if (!rc)
        rc = setup_buffers(ss);
    if (rc) {
        if (ss->listen_fd >= 0)
            close(ss->listen_fd);
        ss->listen_fd = -1;
        free_buffers(ss);
        return rc;
    }
    ss->service = (struct sb_shard_service){
        .step = net_step, .has_work = net_has_work, .timeout_ns = net_timeout_ns, .ctx = ss};
    s->service = &ss->service;
    arm_accept(ss);
    sb_log_writer_reap(&s->writer);
    return 0;
}

int sb_server_net_stop(struct sb_shard *s, void *arg)
{
    struct sb_server_shard *ss = arg;
    ss->stopping = true;
    /* An accept prepared but not yet submitted would otherwise reach the kernel after the
     * close below, with a descriptor number that may name another file by then. */
    sb_log_writer_flush(&s->writer);
    if (ss->listen_fd >= 0) {
        /* Ends the multishot accept; nobody new gets in. */
        shutdown(ss->listen_fd, SHUT_RDWR);
        close(ss->listen_fd);
        ss->listen_fd = -1;
    }
    return 0;
}

int sb_server_net_finish(struct sb_shard *s, void *arg)
{
    struct sb_server_shard *ss = arg;
    (void)s;
    /* Requests in flight are answered first (a waiting Fetch with what there is now); then
     * each connection whose queue is empty is closed. */
    for (struct sb_request *r = ss->waiting; r; r = r->next_waiting)
        r->deadline_ns = 0;
    for (struct sb_conn *c = ss->conns, *next; c; c = next) {
        next = c->next;
        if (!c->head)
            sb_conn_close(c, NULL);
        else if (c->tail->done)
            c->tail->close_after = true, conn_try_send(c);
    }
    /* Quiet: nothing left here. The service stays attached (sb_server_net_detach()): another
     * shard's operation may still be on its way to this one. */
    return ss->conns || ss->accept_armed || ss->deferred_head || ss->reads_in_flight ||
                   ss->returns_head
               ? 0
               : 1;
}

int sb_server_net_detach(struct sb_shard *s, void *arg)
{
    struct sb_server_shard *ss = arg;
    if (ss->conns || ss->accept_armed || ss->deferred_head || ss->reads_in_flight ||
        ss->returns_head)
        return -EBUSY; /* not quiet: sb_server_net_finish() first */
    s->service = NULL;
    free_buffers(ss);
    return 0;
}
