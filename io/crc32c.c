/*
 * crc32c.c - CRC-32C in hardware (SSE4.2) and software (slicing-by-8), chosen at run time.
 */
#include "crc32c.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define CRC32C_POLY_REFLECTED 0x82F63B78u

static uint32_t crc_table[8][256];
static pthread_once_t crc_table_once = PTHREAD_ONCE_INIT;

static void crc_table_build(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ CRC32C_POLY_REFLECTED : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

uint32_t sb_crc32c_sw(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    pthread_once(&crc_table_once, crc_table_build);
    crc = ~crc;
    while (len >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
        lo ^= crc; /* little-endian hosts only; x86-64 and arm64 Linux are */
        crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
              crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
              crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
              crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

__attribute__((target("sse4.2"))) uint32_t sb_crc32c_hw(uint32_t crc, const void *data,
                                                         size_t len)
{
    const unsigned char *p = data;
    uint64_t c = ~crc;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = _mm_crc32_u64(c, v);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = _mm_crc32_u8(c32, *p++);
    return ~c32;
}

int sb_crc32c_hw_available(void)
{
    return __builtin_cpu_supports("sse4.2");
}
#else
uint32_t sb_crc32c_hw(uint32_t crc, const void *data, size_t len)
{
    return sb_crc32c_sw(crc, data, len);
}

int sb_crc32c_hw_available(void)
{
    return 0;
}
#endif

/* 0 = not chosen yet, 1 = software, 2 = hardware. Relaxed: every thread computes the same
 * answer, so a race only repeats the check. */
static _Atomic int crc_impl;

uint32_t sb_crc32c(uint32_t crc, const void *data, size_t len)
{
    int impl = atomic_load_explicit(&crc_impl, memory_order_relaxed);
    if (impl == 0) {
        impl = sb_crc32c_hw_available() ? 2 : 1;
        atomic_store_explicit(&crc_impl, impl, memory_order_relaxed);
    }
    return impl == 2 ? sb_crc32c_hw(crc, data, len) : sb_crc32c_sw(crc, data, len);
}
