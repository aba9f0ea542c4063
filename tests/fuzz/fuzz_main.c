/*
 * fuzz_main.c - runs a fuzz harness as a plain test (see fuzz.h): the seed, mutations of it
 * (bit flips, byte changes, truncations, extensions) and random inputs, reproducibly; plus any
 * files given as arguments first (tests/fuzz/corpus/<harness>/: inputs that once broke a
 * decoder, kept so they never do again).
 *
 * Usage: fuzz_X [--write-seed DIR] [FILE...]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#define MAX_INPUT 65536
#define ROUNDS 20000

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 1;
    }
    static unsigned char buf[MAX_INPUT];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    /* A copy of exactly n bytes, so ASan sees any read past the end. */
    unsigned char *copy = malloc(n ? n : 1);
    memcpy(copy, buf, n);
    LLVMFuzzerTestOneInput(copy, n);
    free(copy);
    return 0;
}

int main(int argc, char **argv)
{
    static unsigned char seed[MAX_INPUT], input[MAX_INPUT];
    size_t seed_len = fuzz_seed(seed, sizeof(seed));
    if (argc == 3 && !strcmp(argv[1], "--write-seed")) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/seed", argv[2]);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(seed, 1, seed_len, f) != seed_len) {
            perror(path);
            return 1;
        }
        fclose(f);
        return 0;
    }
    /* Files first (the regression corpus: inputs that once broke a decoder), then the rest. */
    for (int i = 1; i < argc; i++)
        if (run_file(argv[i]))
            return 1;
    for (uint64_t round = 0; round < ROUNDS; round++) {
        uint64_t r = mix(round + 1);
        size_t len;
        if (round % 4 == 3) {
            /* Random bytes of a random length. */
            len = r % 512;
            for (size_t i = 0; i < len; i++)
                input[i] = (unsigned char)mix(r + i);
        } else {
            /* The seed, mutated a few times, maybe cut or extended. */
            len = seed_len;
            memcpy(input, seed, seed_len);
            for (int k = 0; k < 1 + (int)(r % 4); k++) {
                uint64_t m = mix(r * 7 + (uint64_t)k);
                if (len)
                    input[m % len] ^= (unsigned char)(1 + (m >> 32) % 255);
            }
            if ((r >> 8) % 3 == 0 && len)
                len = (size_t)(mix(r) % len);
            else if ((r >> 8) % 3 == 1 && len + 16 <= MAX_INPUT)
                for (int k = 0; k < 16; k++)
                    input[len++] = (unsigned char)mix(r + 99 + (uint64_t)k);
        }
        unsigned char *copy = malloc(len ? len : 1);
        memcpy(copy, input, len);
        LLVMFuzzerTestOneInput(copy, len);
        free(copy);
    }
    /* And the untouched seed. */
    LLVMFuzzerTestOneInput(seed, seed_len);
    printf("%s: %d corpus files, seed + %d mutated and random inputs survived\n", argv[0],
           argc - 1, ROUNDS);
    return 0;
}
