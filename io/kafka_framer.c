/*
 * kafka_framer.c - see kafka_framer.h.
 */
#include "kafka_framer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "varint.h"

void sb_kafka_framer_init(struct sb_kafka_framer *f, size_t max_frame)
{
    memset(f, 0, sizeof(*f));
    f->max_frame = max_frame;
}

void sb_kafka_framer_free(struct sb_kafka_framer *f)
{
    free(f->buf);
    f->buf = NULL;
    f->start = f->len = f->cap = f->taken = 0;
}

int sb_kafka_framer_feed(struct sb_kafka_framer *f, const void *data, size_t n)
{
    if (f->start && (f->start == f->len || f->start > f->cap / 2)) {
        /* Move what is left to the front once most of the buffer has been handed out. */
        memmove(f->buf, f->buf + f->start, f->len - f->start);
        f->len -= f->start;
        f->start = 0;
    }
    if (f->cap - f->len < n) {
        size_t cap = f->cap ? f->cap : 4096;
        while (cap - f->len < n)
            cap *= 2;
        unsigned char *buf = realloc(f->buf, cap);
        if (!buf)
            return -ENOMEM;
        f->buf = buf;
        f->cap = cap;
    }
    if (n)
        memcpy(f->buf + f->len, data, n);
    f->len += n;
    return 0;
}

int sb_kafka_framer_next(struct sb_kafka_framer *f, const unsigned char **frame, size_t *len)
{
    size_t avail = f->len - f->start;
    if (avail < 4)
        return 0;
    int32_t size = (int32_t)sb_be32_get(f->buf + f->start);
    if (size < SB_KAFKA_MIN_REQUEST_BYTES)
        return -EBADMSG;
    if ((size_t)size > f->max_frame)
        return -EMSGSIZE;
    if (avail - 4 < (size_t)size)
        return 0;
    *frame = f->buf + f->start + 4;
    *len = (size_t)size;
    f->taken = 4 + (size_t)size;
    return 1;
}

void sb_kafka_framer_consume(struct sb_kafka_framer *f)
{
    f->start += f->taken;
    f->taken = 0;
}
