/*
 * murmur2.c - Kafka's murmur2 hash (org.apache.kafka.common.utils.Utils.murmur2), so that a key
 * lands on the partition a Kafka client would choose for it.
 */
#include <shardbus.h>

#include <stdint.h>

uint32_t sb_murmur2(const void *data, size_t len)
{
    const unsigned char *b = data;
    const uint32_t seed = 0x9747b28cu;
    const uint32_t m = 0x5bd1e995u;
    const int r = 24;
    uint32_t h = seed ^ (uint32_t)len;
    size_t blocks = len / 4;

    for (size_t i = 0; i < blocks; i++) {
        /* Little-endian 4-byte blocks, as the Java code assembles them. */
        uint32_t k = (uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 |
                     (uint32_t)b[4 * i + 2] << 16 | (uint32_t)b[4 * i + 3] << 24;
        k *= m;
        k ^= k >> r;
        k *= m;
        h *= m;
        h ^= k;
    }
    const unsigned char *tail = b + blocks * 4;
    switch (len & 3) {
    case 3:
        h ^= (uint32_t)tail[2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)tail[1] << 8;
        /* fall through */
    case 1:
        h ^= (uint32_t)tail[0];
        h *= m;
        break;
    default:
        break;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h;
}
