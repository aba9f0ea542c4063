/*
 * report.c - printing and JSON of one run's results (see report.h).
 */
#include "report.h"

#include <errno.h>

static const double pcts[] = {50, 90, 99, 99.9, 99.99};
static const char *const pct_names[] = {"p50", "p90", "p99", "p99_9", "p99_99"};
#define NPCTS (sizeof pcts / sizeof pcts[0])

static double rate(uint64_t n, double s)
{
    return s > 0 ? (double)n / s : 0;
}

void bench_report_print(FILE *f, const struct bench_options *o, const struct bench_result *r)
{
    double mb = (double)o->size / 1e6;
    fprintf(f, "%s (%s client): %d producer(s), %d consumer(s), %zu-byte messages, %s, %.1f s after %.1f s of warm-up\n",
            o->label, o->client, o->producers, o->consumers, o->size,
            o->rate > 0 ? "fixed rate" : "as fast as possible", o->duration_s, o->warmup_s);
    if (o->rate > 0)
        fprintf(f, "  target rate  %.0f msg/s\n", o->rate);
    fprintf(f, "  sent         %llu msgs  %.0f msg/s  %.2f MB/s\n", (unsigned long long)r->sent,
            rate(r->sent_measured, r->send_seconds), rate(r->sent_measured, r->send_seconds) * mb);
    fprintf(f, "  received     %llu msgs  %.0f msg/s  %.2f MB/s\n", (unsigned long long)r->received,
            rate(r->received_measured, r->receive_seconds), rate(r->received_measured, r->receive_seconds) * mb);
    fprintf(f, "  latency us   min %.1f  mean %.1f", r->latency->total ? (double)r->latency->min / 1e3 : 0,
            bench_hist_mean(r->latency) / 1e3);
    for (unsigned i = 0; i < NPCTS; i++)
        fprintf(f, "  %s %.1f", pct_names[i], (double)bench_hist_percentile(r->latency, pcts[i]) / 1e3);
    fprintf(f, "  max %.1f\n", (double)r->latency->max / 1e3);
    /* CPU per message: over the messages stamped after the warm-up (each sent once). */
    double per_msg = r->sent_measured ? 1e6 / (double)r->sent_measured : 0;
    double window = r->cpu_window_s > 0 ? r->cpu_window_s : 1;
    fprintf(f, "  cpu          client %.3f us/msg (%.2f cores)", r->client_cpu_s * per_msg,
            r->client_cpu_s / window);
    if (r->server_cpu_s >= 0)
        fprintf(f, "  server %.3f us/msg (%.2f cores)", r->server_cpu_s * per_msg,
                r->server_cpu_s / window);
    fprintf(f, "  over %.2f s\n", r->cpu_window_s);
    fprintf(f, "  data         %s: lost %llu, duplicated %llu, corrupt %llu, send failures %llu, "
               "client errors %d\n",
            r->ok ? "verified" : "WRONG", (unsigned long long)r->lost,
            (unsigned long long)r->duplicated, (unsigned long long)r->corrupt,
            (unsigned long long)r->send_failed, r->errors);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", *s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

int bench_report_json(const char *path, const struct bench_options *o, const struct bench_result *r)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    double mb = (double)o->size / 1e6;
    fprintf(f, "{\n  \"label\": ");
    json_str(f, o->label);
    fprintf(f, ",\n  \"system\": ");
    json_str(f, o->system_name);
    fprintf(f, ",\n  \"client\": ");
    json_str(f, o->client);
    fprintf(f, ",\n  \"addr\": ");
    json_str(f, o->addr);
    fprintf(f, ",\n  \"date\": \"%s\",\n", r->date);
    fprintf(f, "  \"config\": {\"producers\": %d, \"consumers\": %d, \"partitions\": %d, "
               "\"size\": %zu, \"warmup_s\": %g, \"duration_s\": %g, \"rate\": %g, \"batch\": %d, "
               "\"linger_ms\": %d, \"inflight\": %d, \"acks\": ",
            o->producers, o->consumers, o->partitions, o->size, o->warmup_s, o->duration_s, o->rate, o->batch,
            o->linger_ms, o->inflight);
    json_str(f, o->acks);
    if (o->system == BENCH_EMBEDDED) {
        fprintf(f, ", \"shards\": %d, \"data_dir\": %s, \"durability\": ", o->shards,
                o->data_dir ? "true" : "false");
        json_str(f, o->data_dir ? o->durability_name : "memory only");
    }
    fprintf(f, "},\n");
    fprintf(f, "  \"sent\": %llu,\n  \"sent_msgs_per_s\": %.1f,\n  \"sent_mb_per_s\": %.3f,\n",
            (unsigned long long)r->sent, rate(r->sent_measured, r->send_seconds),
            rate(r->sent_measured, r->send_seconds) * mb);
    fprintf(f, "  \"received\": %llu,\n  \"received_msgs_per_s\": %.1f,\n  \"received_mb_per_s\": %.3f,\n",
            (unsigned long long)r->received, rate(r->received_measured, r->receive_seconds),
            rate(r->received_measured, r->receive_seconds) * mb);
    fprintf(f, "  \"sent_measured\": %llu,\n  \"received_measured\": %llu,\n",
            (unsigned long long)r->sent_measured, (unsigned long long)r->received_measured);
    fprintf(f, "  \"send_seconds\": %.4f,\n  \"receive_seconds\": %.4f,\n", r->send_seconds,
            r->receive_seconds);
    double per_msg = r->sent_measured ? 1e6 / (double)r->sent_measured : 0;
    fprintf(f, "  \"cpu\": {\"window_s\": %.4f, \"client_s\": %.4f, \"client_us_per_msg\": %.4f",
            r->cpu_window_s, r->client_cpu_s, r->client_cpu_s * per_msg);
    if (r->server_cpu_s >= 0)
        fprintf(f, ", \"server_s\": %.4f, \"server_us_per_msg\": %.4f", r->server_cpu_s,
                r->server_cpu_s * per_msg);
    fprintf(f, "},\n");
    fprintf(f, "  \"lost\": %llu,\n  \"duplicated\": %llu,\n  \"corrupt\": %llu,\n"
               "  \"send_failed\": %llu,\n  \"client_errors\": %d,\n  \"ok\": %s,\n",
            (unsigned long long)r->lost, (unsigned long long)r->duplicated,
            (unsigned long long)r->corrupt, (unsigned long long)r->send_failed, r->errors,
            r->ok ? "true" : "false");
    fprintf(f, "  \"latency_us\": {\"count\": %llu, \"min\": %.3f, \"mean\": %.3f",
            (unsigned long long)r->latency->total,
            r->latency->total ? (double)r->latency->min / 1e3 : 0, bench_hist_mean(r->latency) / 1e3);
    for (unsigned i = 0; i < NPCTS; i++)
        fprintf(f, ", \"%s\": %.3f", pct_names[i],
                (double)bench_hist_percentile(r->latency, pcts[i]) / 1e3);
    fprintf(f, ", \"max\": %.3f},\n", (double)r->latency->max / 1e3);
    /* The distribution for plots: the latency at 0, 10, 20 ... 99.999 percent. */
    static const double dist[] = {0,  10, 20, 30,   40,    50,     60,     70,     75,  80,
                                  85, 90, 95, 97.5, 99,    99.5,   99.9,   99.95,  99.99,
                                  99.995, 99.999, 100};
    fprintf(f, "  \"latency_distribution_us\": [");
    for (unsigned i = 0; i < sizeof dist / sizeof dist[0]; i++)
        fprintf(f, "%s[%g, %.3f]", i ? ", " : "", dist[i],
                (double)(dist[i] == 0 ? (r->latency->total ? r->latency->min : 0)
                                      : bench_hist_percentile(r->latency, dist[i])) / 1e3);
    fprintf(f, "]\n}\n");
    if (fclose(f) != 0)
        return -errno;
    return 0;
}
