/*
 * bench_codec.cc - the per-byte and per-record costs on the event path: CRC-32C (the SSE4.2
 * instruction vs the software table, same bytes), record batch encoding and decoding (100-byte
 * values, 16-byte keys), and the murmur2 partitioner (Kafka's default for keyed events).
 *
 * Each benchmark checks its result (a known CRC, every decoded record's bytes, the partition of
 * a known key) so a figure always stands for correct work.
 */
#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

#include "bench_util.h"

extern "C" {
#include "crc32c.h"
#include "record_batch.h"
#include <shardbus.h>
}

namespace {

std::vector<unsigned char> bytes_of(size_t n)
{
    std::vector<unsigned char> v(n);
    for (size_t i = 0; i < n; i++)
        v[i] = (unsigned char)(i * 131 + 7);
    return v;
}

void BM_crc32c(benchmark::State &state, bool hw)
{
    if (hw && !sb_crc32c_hw_available()) {
        state.SkipWithError("no SSE4.2 CRC-32C instruction on this CPU");
        return;
    }
    const size_t n = (size_t)state.range(0);
    std::vector<unsigned char> data = bytes_of(n);
    const uint32_t expect = sb_crc32c_sw(0, data.data(), n);
    for (auto _ : state) {
        uint32_t c = hw ? sb_crc32c_hw(0, data.data(), n) : sb_crc32c_sw(0, data.data(), n);
        if (c != expect)
            bench::fail("crc32c", expect, c);
        benchmark::DoNotOptimize(c);
    }
    state.SetBytesProcessed((int64_t)state.iterations() * (int64_t)n);
}
BENCHMARK_CAPTURE(BM_crc32c, hw, true)->Arg(100)->Arg(4096)->Arg(1 << 20);
BENCHMARK_CAPTURE(BM_crc32c, sw, false)->Arg(100)->Arg(4096)->Arg(1 << 20);

constexpr size_t kKey = 16, kValue = 100;

/* One batch of @records records: the bytes every encode produces. */
size_t encode_batch(std::vector<unsigned char> &buf, int records)
{
    static const std::vector<unsigned char> value = bytes_of(kValue);
    char key[kKey + 1];
    struct sb_batch_builder b;
    sb_batch_begin(&b, buf.data(), buf.size());
    for (int i = 0; i < records; i++) {
        std::snprintf(key, sizeof(key), "key-%011d", i);
        if (sb_batch_add(&b, 1700000000000 + i, key, kKey, value.data(), kValue))
            bench::fail("batch room", 0, 1);
    }
    return sb_batch_finish(&b, 0, false);
}

void BM_batch_encode(benchmark::State &state)
{
    const int records = (int)state.range(0);
    std::vector<unsigned char> buf(SB_BATCH_HEADER_BYTES +
                                   records * sb_batch_record_bound(kKey, kValue));
    size_t len = 0;
    for (auto _ : state) {
        len = encode_batch(buf, records);
        benchmark::DoNotOptimize(buf.data());
    }
    struct sb_batch_info info;
    const char *why;
    if (sb_batch_validate(buf.data(), len, &info, &why) || info.record_count != records)
        bench::fail("encoded batch valid", (unsigned long long)records, 0);
    state.SetItemsProcessed((int64_t)state.iterations() * records);
    state.SetBytesProcessed((int64_t)state.iterations() * (int64_t)len);
}
BENCHMARK(BM_batch_encode)->Arg(1)->Arg(100)->Arg(1000);

void BM_batch_decode(benchmark::State &state)
{
    const int records = (int)state.range(0);
    std::vector<unsigned char> buf(SB_BATCH_HEADER_BYTES +
                                   records * sb_batch_record_bound(kKey, kValue));
    const size_t len = encode_batch(buf, records);
    const std::vector<unsigned char> value = bytes_of(kValue);
    for (auto _ : state) {
        /* What a reader of the log does: validate (CRC), then walk every record. */
        struct sb_batch_info info;
        const char *why;
        if (sb_batch_validate(buf.data(), len, &info, &why))
            bench::fail("batch valid", 0, 1);
        struct sb_record_iter it;
        struct sb_record rec;
        sb_record_iter_init(&it, buf.data(), len);
        int n = 0;
        while (sb_record_next(&it, &rec, &why) == 1) {
            if (rec.offset != n || rec.value_len != (int32_t)kValue ||
                std::memcmp(rec.value, value.data(), kValue) != 0)
                bench::fail("decoded record", (unsigned long long)n, (unsigned long long)rec.offset);
            n++;
        }
        if (n != records)
            bench::fail("records decoded", (unsigned long long)records, (unsigned long long)n);
    }
    state.SetItemsProcessed((int64_t)state.iterations() * records);
    state.SetBytesProcessed((int64_t)state.iterations() * (int64_t)len);
}
BENCHMARK(BM_batch_decode)->Arg(1)->Arg(100)->Arg(1000);

void BM_partitioner(benchmark::State &state)
{
    char keys[256][kKey + 1];
    for (int i = 0; i < 256; i++)
        std::snprintf(keys[i], sizeof(keys[i]), "customer-%07d", i);
    /* Kafka's own test vector: murmur2("21") == -973932308. */
    if (sb_murmur2("21", 2) != (uint32_t)-973932308)
        bench::fail("murmur2 test vector", (uint32_t)-973932308, sb_murmur2("21", 2));
    uint64_t i = 0, sum = 0;
    for (auto _ : state) {
        /* Kafka's default partitioner, as sb_publish() applies it (core/topic.h). */
        sum += (sb_murmur2(keys[i++ & 255], kKey) & 0x7fffffffu) % 12;
    }
    benchmark::DoNotOptimize(sum);
    state.SetItemsProcessed((int64_t)state.iterations());
}
BENCHMARK(BM_partitioner);

} // namespace

BENCHMARK_MAIN();
