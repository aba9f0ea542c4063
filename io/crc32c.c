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

/*
 * The crc32 instruction has a latency of 3 cycles and a throughput of 1 per cycle, so one
 * dependent chain uses a third of it. Long inputs are cut into three consecutive blocks whose
 * CRCs are computed side by side, then joined: the CRC of A followed by B is
 * shift(crc(A), |B|) ^ crc(B) with B's CRC started from 0, where shift() appends |B| zero bytes
 * to a CRC. Appending a fixed number of zeros is linear over GF(2), so it is a 32x32 bit matrix,
 * applied here through four 256-entry tables (one per byte of the CRC). Two block sizes: LONG
 * for the bulk, SHORT for what is left.
 */
#define CRC_LONG 8192
#define CRC_SHORT 256

static uint32_t crc_shift_long[4][256], crc_shift_short[4][256];
static pthread_once_t crc_shift_once = PTHREAD_ONCE_INIT;

/* The GF(2) matrix @mat (32 columns, each a uint32_t) times the vector @vec. */
static uint32_t gf2_times(const uint32_t *mat, uint32_t vec)
{
    uint32_t sum = 0;
    for (; vec; vec >>= 1, mat++)
        if (vec & 1)
            sum ^= *mat;
    return sum;
}

static void gf2_square(uint32_t *square, const uint32_t *mat)
{
    for (int n = 0; n < 32; n++)
        square[n] = gf2_times(mat, mat[n]);
}

/* The matrix appending @len zero bytes (a power of two, >= 1) to a CRC (pre/post-inversion
 * aside: the register itself). */
static void crc_zeros_matrix(uint32_t *out, size_t len)
{
    uint32_t a[32], b[32];
    /* One zero bit: the register shifts right by one, the polynomial folds in the low bit. */
    a[0] = CRC32C_POLY_REFLECTED;
    for (int n = 1; n < 32; n++)
        a[n] = 1u << (n - 1);
    /* Square three times: 2, 4, then 8 zero bits (one byte). */
    gf2_square(b, a);
    gf2_square(a, b);
    gf2_square(b, a);
    /* b = one zero byte; square once per doubling of len. */
    uint32_t *cur = b, *next = a;
    for (size_t n = 1; n < len; n <<= 1) {
        gf2_square(next, cur);
        uint32_t *t = cur;
        cur = next;
        next = t;
    }
    memcpy(out, cur, sizeof(a));
}

static void crc_shift_table(uint32_t table[4][256], size_t len)
{
    uint32_t mat[32];
    crc_zeros_matrix(mat, len);
    for (uint32_t n = 0; n < 256; n++)
        for (int k = 0; k < 4; k++)
            table[k][n] = gf2_times(mat, n << (8 * k));
}

static void crc_shift_build(void)
{
    crc_shift_table(crc_shift_long, CRC_LONG);
    crc_shift_table(crc_shift_short, CRC_SHORT);
}

static inline uint32_t crc_shift(const uint32_t table[4][256], uint32_t crc)
{
    return table[0][crc & 0xff] ^ table[1][(crc >> 8) & 0xff] ^ table[2][(crc >> 16) & 0xff] ^
           table[3][crc >> 24];
}

/* Three blocks of @block bytes side by side, as long as 3 * block bytes remain. */
__attribute__((target("sse4.2"))) static inline const unsigned char *
crc_three_ways(uint64_t *c, const unsigned char *p, size_t *len, size_t block,
               const uint32_t table[4][256])
{
    while (*len >= 3 * block) {
        uint64_t c0 = *c, c1 = 0, c2 = 0;
        for (const unsigned char *end = p + block; p < end; p += 8) {
            uint64_t v0, v1, v2;
            memcpy(&v0, p, 8);
            memcpy(&v1, p + block, 8);
            memcpy(&v2, p + 2 * block, 8);
            c0 = _mm_crc32_u64(c0, v0);
            c1 = _mm_crc32_u64(c1, v1);
            c2 = _mm_crc32_u64(c2, v2);
        }
        c0 = crc_shift(table, (uint32_t)c0) ^ c1;
        c0 = crc_shift(table, (uint32_t)c0) ^ c2;
        *c = c0;
        p += 2 * block;
        *len -= 3 * block;
    }
    return p;
}

__attribute__((target("sse4.2"))) uint32_t sb_crc32c_hw(uint32_t crc, const void *data,
                                                         size_t len)
{
    const unsigned char *p = data;
    uint64_t c = ~crc;
    if (len >= 3 * CRC_SHORT) {
        pthread_once(&crc_shift_once, crc_shift_build);
        p = crc_three_ways(&c, p, &len, CRC_LONG, crc_shift_long);
        p = crc_three_ways(&c, p, &len, CRC_SHORT, crc_shift_short);
    }
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
