/*
 * test_bench_message.c - the load generator's message check (bench/e2e/message.c), which every
 * "verified" in a benchmark report rests on: a message survives encode/decode with its header,
 * and a change to any one byte of it (header magic or body) is refused.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static void check_size(size_t size, uint64_t seq)
{
    unsigned char *buf = malloc(size);
    struct bench_msg_header h;
    bench_msg_encode(buf, size, 7, seq, 123456789u + seq);
    CHECK(bench_msg_decode(buf, size, size, &h) == 0, "size %zu seq %llu: decode", size,
          (unsigned long long)seq);
    CHECK(h.producer == 7 && h.seq == seq && h.ts_ns == 123456789u + seq,
          "size %zu: header %u %llu %llu", size, h.producer, (unsigned long long)h.seq,
          (unsigned long long)h.ts_ns);
    /* The body is the documented ramp, byte for byte (an encoder that wrote the same wrong
     * bytes as the decoder expects would pass the round trip alone). */
    for (size_t i = BENCH_MSG_HEADER; i < size; i++)
        if (buf[i] != (uint8_t)(seq * 31u + i)) {
            CHECK(0, "size %zu seq %llu: byte %zu is %u", size, (unsigned long long)seq, i, buf[i]);
            break;
        }
    /* Every body byte and the magic: one change is caught. */
    for (size_t i = 0; i < size; i++) {
        if (i >= 4 && i < BENCH_MSG_HEADER)
            continue; /* producer, seq and timestamp are data, checked by the verifier */
        buf[i] ^= 0x40;
        CHECK(bench_msg_decode(buf, size, size, &h) == -EINVAL,
              "size %zu seq %llu: byte %zu changed, not caught", size, (unsigned long long)seq, i);
        buf[i] ^= 0x40;
    }
    CHECK(bench_msg_decode(buf, size - 1, size, &h) == -EINVAL, "size %zu: short not caught", size);
    free(buf);
}

int main(void)
{
    static const size_t sizes[] = {
        BENCH_MSG_HEADER, BENCH_MSG_HEADER + 1, 100, 255, 256, 279, 280, 281, 1000, 4096, 70001};
    static const uint64_t seqs[] = {0, 1, 8, 255, 256, 1000003, UINT64_C(1) << 39};
    for (size_t a = 0; a < sizeof sizes / sizeof sizes[0]; a++)
        for (size_t b = 0; b < sizeof seqs / sizeof seqs[0]; b++)
            check_size(sizes[a], seqs[b]);
    if (failures) {
        fprintf(stderr, "test_bench_message: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_bench_message: ok\n");
    return 0;
}
