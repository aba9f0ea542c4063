/*
 * test_murmur2.c - the partitioner matches Kafka's: Utils.murmur2 test vectors from Kafka's
 * UtilsTest, and the partition a key lands on.
 */
#include <shardbus.h>

#include "check.h"

static void check_vector(const char *key, int32_t java_int)
{
    uint32_t h = sb_murmur2(key, strlen(key));
    if ((int32_t)h != java_int) {
        fprintf(stderr, "murmur2(\"%s\") = %d, Kafka says %d\n", key, (int32_t)h, java_int);
        exit(1);
    }
}

int main(void)
{
    check_vector("21", -973932308);
    check_vector("foobar", -790332482);
    check_vector("a-little-bit-long-string", -985981536);
    check_vector("a-little-bit-longer-string", -1486304829);
    check_vector("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971);
    check_vector("abc", 479470107);
    /* Kafka: partition = toPositive(murmur2(key)) % numPartitions, toPositive = & 0x7fffffff. */
    uint32_t h = sb_murmur2("foobar", 6);
    CHECK_EQ((h & 0x7fffffffu) % 7, ((uint32_t)-790332482 & 0x7fffffffu) % 7);
    printf("test_murmur2: all passed\n");
    return 0;
}
