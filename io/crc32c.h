/*
 * crc32c.h - CRC-32C (Castagnoli), the checksum of Kafka record batches (magic 2).
 *
 * Uses the SSE4.2 crc32 instruction when the CPU has it (checked once, at the first call) and
 * a table-driven software version otherwise; both give the same results.
 */
#ifndef SB_CRC32C_H
#define SB_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/**
 * sb_crc32c - extend @crc (0 to start) over @len bytes of @data. Any thread; pure.
 * Example: sb_crc32c(0, "123456789", 9) == 0xE3069283.
 */
uint32_t sb_crc32c(uint32_t crc, const void *data, size_t len);

/** The two implementations, exposed for tests and benchmarks. sb_crc32c_hw() may only be
 *  called when sb_crc32c_hw_available() is true. */
uint32_t sb_crc32c_sw(uint32_t crc, const void *data, size_t len);
uint32_t sb_crc32c_hw(uint32_t crc, const void *data, size_t len);
int sb_crc32c_hw_available(void);

#endif /* SB_CRC32C_H */
