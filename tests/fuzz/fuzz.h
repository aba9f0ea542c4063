/*
 * fuzz.h - the contract of a fuzz harness: every decoder of untrusted bytes (on-disk batches,
 * wire requests, shared-memory rings) has one. Each harness file defines:
 *
 *   int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);  the libFuzzer entry point
 *   size_t fuzz_seed(unsigned char *buf, size_t cap);               one valid input to start from
 *
 * Built with clang -fsanitize=fuzzer it is a libFuzzer target (SB_FUZZ=ON); built with
 * fuzz_main.c it is a plain test that runs the seed, thousands of mutations of it and random
 * inputs, so every build checks that the decoders survive hostile bytes.
 */
#ifndef SB_FUZZ_H
#define SB_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t fuzz_seed(unsigned char *buf, size_t cap);

#endif /* SB_FUZZ_H */
