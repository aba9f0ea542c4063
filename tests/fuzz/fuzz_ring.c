/*
 * fuzz_ring.c - a ring whose shared memory another process scribbled on: the input becomes the
 * shared header's indexes and the data area, and the consumer reads records (peek,
 * sb_ring_read_n and sb_ring_read_items) until the ring says empty or corrupt. It must never
 * read outside the ring.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "ring.h"

#define CAPACITY 4096u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static void *mem;
    const size_t bytes = sb_ring_memory_size(CAPACITY);
    if (!mem && !(mem = aligned_alloc(SB_CACHE_GUARD, bytes)))
        return 0;
    if (sb_ring_format(mem, bytes, CAPACITY))
        return 0;
    struct sb_ring_shared *s = mem;
    uint64_t head = 0, tail = 0;
    if (size >= 16) {
        memcpy(&head, data, 8);
        memcpy(&tail, data + 8, 8);
        data += 16;
        size -= 16;
    }
    unsigned char *area = (unsigned char *)mem + s->data_offset;
    memcpy(area, data, size < CAPACITY ? size : CAPACITY);
    /* Relaxed: the harness is one thread playing both the scribbler and the consumer. */
    atomic_store_explicit(&s->head, head, memory_order_relaxed);
    atomic_store_explicit(&s->tail, tail, memory_order_relaxed);
    struct sb_ring_consumer c;
    if (sb_ring_consumer_attach(&c, mem, bytes))
        return 0;
    bool corrupt = false;
    const struct sb_ring_record *rec;
    for (int i = 0; i < 1024 && (rec = sb_ring_peek(&c, &corrupt)); i++) {
        volatile unsigned char sink = 0;
        for (uint32_t k = 0; k < sb_ring_record_length(rec); k++)
            sink ^= rec->payload[k];
        (void)sink;
        sb_ring_advance(&c, rec);
    }
    sb_ring_release(&c);
    if (sb_ring_consumer_attach(&c, mem, bytes))
        return 0;
    unsigned char out[64 * 8];
    (void)sb_ring_read_n(&c, 1, out, 8, 64, &corrupt);
    /* The item calls, in pieces of 3 items (records left half read between calls), then 4-byte
     * items over whatever the pieces left. */
    if (sb_ring_consumer_attach(&c, mem, bytes))
        return 0;
    for (int i = 0; i < 1024 && sb_ring_read_items(&c, 1, out, 8, 3, &corrupt) > 0; i++) {
    }
    (void)sb_ring_read_items(&c, 1, out, 4, 64, &corrupt);
    return 0;
}

size_t fuzz_seed(unsigned char *buf, size_t cap)
{
    /* head 0, tail 40: one record of 8 bytes and one of 12 (committed marks), then a zero
     * mark. */
    if (cap < 16 + 48)
        return 0;
    memset(buf, 0, 16 + 48);
    uint64_t tail = 40;
    memcpy(buf + 8, &tail, 8);
    uint32_t len = SB_RING_MARK_COMMITTED | 8, type = 1;
    memcpy(buf + 16, &len, 4);
    memcpy(buf + 20, &type, 4);
    len = SB_RING_MARK_COMMITTED | 12;
    memcpy(buf + 32, &len, 4);
    memcpy(buf + 36, &type, 4);
    return 16 + 48;
}
