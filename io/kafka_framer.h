/*
 * kafka_framer.h - cutting a connection's byte stream into Kafka requests: each is an int32
 * size (big-endian) followed by that many bytes. Bytes arrive in pieces of any size; complete
 * frames come out whole, in order. A size above the configured limit, or one too small to hold
 * a request header, is refused so the caller can answer and close the connection instead of
 * buffering without bound.
 *
 * One connection's state; one thread at a time.
 */
#ifndef SB_KAFKA_FRAMER_H
#define SB_KAFKA_FRAMER_H

#include <stddef.h>
#include <stdint.h>

/** The smallest request: api key, version, correlation id, client id length. */
#define SB_KAFKA_MIN_REQUEST_BYTES 10

struct sb_kafka_framer {
    unsigned char *buf;
    size_t start; /* first byte not yet handed out */
    size_t len;   /* bytes held (from 0) */
    size_t cap;
    size_t max_frame;
    size_t taken; /* size of the frame handed out by next(), consumed by consume() */
};

/** sb_kafka_framer_init - an empty framer accepting requests of up to @max_frame bytes. */
void sb_kafka_framer_init(struct sb_kafka_framer *f, size_t max_frame);
void sb_kafka_framer_free(struct sb_kafka_framer *f);

/** sb_kafka_framer_feed - append @n received bytes. Returns 0 or -ENOMEM. */
int sb_kafka_framer_feed(struct sb_kafka_framer *f, const void *data, size_t n);

/**
 * sb_kafka_framer_next - the next complete request: 1 with *frame and *len set (valid until
 * sb_kafka_framer_consume() or the next feed), 0 when more bytes are needed, -EMSGSIZE for a
 * size above max_frame, -EBADMSG for a negative or too small size. After an error the stream
 * cannot be resynchronised: close the connection.
 */
int sb_kafka_framer_next(struct sb_kafka_framer *f, const unsigned char **frame, size_t *len);

/** sb_kafka_framer_consume - done with the frame next() returned. */
void sb_kafka_framer_consume(struct sb_kafka_framer *f);

#endif /* SB_KAFKA_FRAMER_H */
