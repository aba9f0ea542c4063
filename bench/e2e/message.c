/*
 * message.c - benchmark message layout and the receiving side's check (see message.h).
 */
#include "message.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Byte i of message seq's body is (seq * 31 + i) mod 256: a ramp that restarts every 256
 * bytes. RAMP holds two turns of it, so any 256 consecutive bytes of a body are one slice of
 * it: encode copies slices and decode compares them with memcmp (both vectorised by libc),
 * which keeps the check's cost per message small beside the systems measured. */
static uint8_t RAMP[512];
static pthread_once_t ramp_once = PTHREAD_ONCE_INIT;

static void ramp_init(void)
{
    for (size_t i = 0; i < sizeof RAMP; i++)
        RAMP[i] = (uint8_t)i;
}

/* The expected bytes of message @seq's body from offset @i on: a slice of RAMP, *n bytes long
 * (at most 256 and at most @end - @i). */
static const uint8_t *body_slice(uint64_t seq, size_t i, size_t end, size_t *n)
{
    pthread_once(&ramp_once, ramp_init);
    *n = end - i < 256 ? end - i : 256;
    return RAMP + ((seq * 31u + i) & 255u);
}

void bench_msg_encode(void *buf, size_t size, uint32_t producer, uint64_t seq, uint64_t ts_ns)
{
    uint8_t *p = buf;
    uint32_t magic = BENCH_MSG_MAGIC;
    memcpy(p, &magic, 4);
    memcpy(p + 4, &producer, 4);
    memcpy(p + 8, &seq, 8);
    memcpy(p + 16, &ts_ns, 8);
    for (size_t i = BENCH_MSG_HEADER, n; i < size; i += n) {
        const uint8_t *want = body_slice(seq, i, size, &n);
        memcpy(p + i, want, n);
    }
}

int bench_msg_decode(const void *buf, size_t len, size_t size, struct bench_msg_header *out)
{
    const uint8_t *p = buf;
    uint32_t magic;
    if (len != size || len < BENCH_MSG_HEADER)
        return -EINVAL;
    memcpy(&magic, p, 4);
    if (magic != BENCH_MSG_MAGIC)
        return -EINVAL;
    memcpy(&out->producer, p + 4, 4);
    memcpy(&out->seq, p + 8, 8);
    memcpy(&out->ts_ns, p + 16, 8);
    for (size_t i = BENCH_MSG_HEADER, n; i < len; i += n) {
        const uint8_t *want = body_slice(out->seq, i, len, &n);
        if (memcmp(p + i, want, n) != 0)
            return -EINVAL;
    }
    return 0;
}

int bench_verifier_init(struct bench_verifier *v, uint32_t producers)
{
    memset(v, 0, sizeof *v);
    v->maps = calloc(producers ? producers : 1, sizeof *v->maps);
    if (!v->maps)
        return -ENOMEM;
    v->producers = producers;
    return 0;
}

int bench_verifier_add(struct bench_verifier *v, uint32_t producer, uint64_t seq)
{
    if (producer >= v->producers || seq > (UINT64_C(1) << 40)) {
        v->corrupt++;
        return -EINVAL;
    }
    struct bench_seqmap *m = &v->maps[producer];
    if (seq >= m->cap_bits) {
        uint64_t cap = m->cap_bits ? m->cap_bits : UINT64_C(1) << 20;
        while (cap <= seq)
            cap *= 2;
        uint8_t *bits = realloc(m->bits, cap / 8);
        if (!bits)
            return -ENOMEM;
        memset(bits + m->cap_bits / 8, 0, (cap - m->cap_bits) / 8);
        m->bits = bits;
        m->cap_bits = cap;
    }
    uint8_t bit = (uint8_t)(1u << (seq & 7));
    if (m->bits[seq >> 3] & bit) {
        v->duplicated++;
        return 0;
    }
    m->bits[seq >> 3] |= bit;
    m->unique++;
    return 1;
}

uint64_t bench_verifier_missing(const struct bench_verifier *v, uint32_t producer, uint64_t sent)
{
    const struct bench_seqmap *m = &v->maps[producer];
    uint64_t have = 0;
    for (uint64_t s = 0; s < sent && s < m->cap_bits; s++)
        have += (m->bits[s >> 3] >> (s & 7)) & 1u;
    return sent - have;
}

void bench_verifier_free(struct bench_verifier *v)
{
    for (uint32_t i = 0; i < v->producers; i++)
        free(v->maps[i].bits);
    free(v->maps);
    memset(v, 0, sizeof *v);
}
