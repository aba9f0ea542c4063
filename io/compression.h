/*
 * compression.h - decompressing the records of a compressed Kafka record batch.
 *
 * Kafka clients may compress a batch's records (attributes & 7: 1 gzip, 2 snappy, 3 lz4,
 * 4 zstd); the header stays uncompressed and the CRC covers the compressed bytes. The server
 * stores and serves such batches as they came. Readers inside the process (embedded consumers,
 * handlers) need the records themselves: this file turns the compressed section back into the
 * plain records that sb_record_iter walks. The codecs are the libraries Debian ships (zlib,
 * snappy, lz4, zstd), each fed untrusted bytes: a malformed or oversized input is an error,
 * never a read or write outside the buffers.
 */
#ifndef SB_COMPRESSION_H
#define SB_COMPRESSION_H

#include <stddef.h>
#include <sys/types.h>

#include "record_batch.h"

/** Largest decompressed records section accepted (a bound against decompression bombs). */
#define SB_DECOMPRESS_MAX_BYTES ((size_t)256 << 20)

/** Codec numbers, as in a batch's attributes. */
enum sb_codec {
    SB_CODEC_NONE = 0,
    SB_CODEC_GZIP = 1,
    SB_CODEC_SNAPPY = 2,
    SB_CODEC_LZ4 = 3,
    SB_CODEC_ZSTD = 4,
};

/** sb_codec_name - "none", "gzip", "snappy", "lz4", "zstd" or "unknown". */
const char *sb_codec_name(int codec);

/**
 * sb_decompress - decompress @in (@in_len bytes, a batch's records section compressed with
 * @codec) into *buf, which is grown with realloc() as needed (*cap is its size; *buf may be
 * NULL with *cap 0). Snappy accepts both raw snappy and the Java client's framed ("xerial")
 * form. Returns the decompressed length (>= 0), or -EBADMSG (corrupt or truncated input; *why
 * names the problem), -EMSGSIZE (the output would exceed @max_out), -EOPNOTSUPP (codec 0 or
 * unknown), -ENOMEM. Any thread; no shared state.
 */
ssize_t sb_decompress(int codec, const void *in, size_t in_len, unsigned char **buf, size_t *cap,
                      size_t max_out, const char **why);

/**
 * sb_record_iter_init_any - sb_record_iter_init() for any batch that passed
 * sb_batch_validate(): an uncompressed one is walked in place; a compressed one is first
 * decompressed into *buf (grown as sb_decompress() does; the iterator points into it, so keep
 * *buf unchanged while iterating). Returns 0, or sb_decompress()'s errors with *why set.
 */
int sb_record_iter_init_any(struct sb_record_iter *it, const void *batch, size_t len,
                            unsigned char **buf, size_t *cap, const char **why);

/**
 * sb_batch_validate_compressed - for a batch that passed sb_batch_validate() and is compressed:
 * decompress its records into *buf (as sb_record_iter_init_any()) and walk them all
 * (sb_record_iter_validate()), as Kafka's broker does before it accepts a compressed batch.
 * Returns 0 (also for an uncompressed batch, which sb_batch_validate() already walked), or
 * -EBADMSG / -EMSGSIZE / -EOPNOTSUPP / -ENOMEM with *why set.
 */
int sb_batch_validate_compressed(const void *batch, size_t len, unsigned char **buf,
                                 size_t *cap, const char **why);

#endif /* SB_COMPRESSION_H */
