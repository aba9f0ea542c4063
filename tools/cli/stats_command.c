/*
 * stats_command.c - shardbus stats: GET /metrics from shardbusd's metrics listener over a plain
 * socket (HTTP/1.0), then the Prometheus text as a human summary (counters and gauges as they
 * are, each histogram as count, mean and percentile bounds), as JSON, or raw (--raw).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "json.h"
#include "net.h"
#include "options.h"

#define STATS_MAX_BYTES (64u << 20)

struct buf {
    char *p;
    size_t len, cap;
};

static int buf_add(struct buf *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 65536;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q)
            return -1;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

/* GET http://hostport/metrics; the whole response in *resp. 0, or 1 after a message. */
static int http_get(const struct cli_common *c, struct buf *resp)
{
    char why[256];
    long long deadline = cli_now_ms() + c->timeout_ms;
    int fd = cli_tcp_connect(c->metrics, c->timeout_ms, why, sizeof(why));
    if (fd < 0) {
        fprintf(stderr, "shardbus: cannot reach the metrics listener at %s (%s)\n", c->metrics,
                why);
        return 1;
    }
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "GET /metrics HTTP/1.0\r\nHost: %s\r\nUser-Agent: shardbus-cli\r\n"
                     "Accept: text/plain\r\nConnection: close\r\n\r\n",
                     c->metrics);
    for (int off = 0; off < n;) {
        ssize_t w = send(fd, req + off, (size_t)(n - off), MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            fprintf(stderr, "shardbus: stats: sending to %s: %s\n", c->metrics, strerror(errno));
            close(fd);
            return 1;
        }
        off += (int)w;
    }
    for (;;) {
        long long left = deadline - cli_now_ms();
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&pfd, 1, (int)left) == 0) {
            fprintf(stderr, "shardbus: stats: no complete answer from %s within %lld ms\n",
                    c->metrics, c->timeout_ms);
            close(fd);
            return 1;
        }
        char chunk[16384];
        ssize_t r = read(fd, chunk, sizeof(chunk));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fprintf(stderr, "shardbus: stats: reading from %s: %s\n", c->metrics,
                    strerror(errno));
            close(fd);
            return 1;
        }
        if (r == 0)
            break;
        if (resp->len + (size_t)r > STATS_MAX_BYTES || buf_add(resp, chunk, (size_t)r)) {
            fprintf(stderr, "shardbus: stats: the answer from %s is too large\n", c->metrics);
            close(fd);
            return 1;
        }
    }
    close(fd);
    return 0;
}

/* Decode a chunked body in place; returns its new length, or -1 if malformed. */
static long dechunk(char *p, size_t len)
{
    size_t in = 0, out = 0;
    for (;;) {
        char *end;
        if (in >= len)
            return -1;
        unsigned long size = strtoul(p + in, &end, 16);
        char *crlf = memmem(p + in, len - in, "\r\n", 2);
        if (!crlf || end == p + in)
            return -1;
        in = (size_t)(crlf - p) + 2;
        if (size == 0)
            return (long)out;
        if (size > len - in)
            return -1;
        memmove(p + out, p + in, size);
        out += size;
        in += size + 2;
    }
}

/* Split an HTTP response into its body; 0, or 1 after a message. */
static int http_body(const struct cli_common *c, struct buf *resp, char **body, size_t *len)
{
    char *hdr_end = resp->p ? strstr(resp->p, "\r\n\r\n") : NULL;
    int code = 0;
    if (!hdr_end || sscanf(resp->p, "HTTP/%*d.%*d %d", &code) != 1) {
        fprintf(stderr, "shardbus: stats: %s did not answer in HTTP\n", c->metrics);
        return 1;
    }
    if (code != 200) {
        char *eol = strstr(resp->p, "\r\n");
        fprintf(stderr, "shardbus: stats: http://%s/metrics answered \"%.*s\"\n", c->metrics,
                (int)(eol - resp->p), resp->p);
        return 1;
    }
    *hdr_end = 0;
    bool chunked = strcasestr(resp->p, "\r\ntransfer-encoding: chunked") != NULL;
    *body = hdr_end + 4;
    *len = resp->len - (size_t)(*body - resp->p);
    if (chunked) {
        long n = dechunk(*body, *len);
        if (n < 0) {
            fprintf(stderr, "shardbus: stats: a malformed chunked answer from %s\n", c->metrics);
            return 1;
        }
        *len = (size_t)n;
    }
    return 0;
}

/* One sample line "name{labels} value [timestamp]", parsed in place. */
struct sample {
    char *name;
    const char *labels; /* the text between { and }, or "" */
    char *value;
};

static int parse_sample(char *line, struct sample *s)
{
    char *p = line;
    s->name = p;
    while (*p && *p != '{' && *p != ' ' && *p != '\t')
        p++;
    s->labels = "";
    if (*p == '{') {
        *p++ = 0;
        s->labels = p;
        bool quoted = false;
        for (; *p && (quoted || *p != '}'); p++) {
            if (quoted && *p == '\\' && p[1])
                p++;
            else if (*p == '"')
                quoted = !quoted;
        }
        if (*p != '}')
            return -1;
        *p++ = 0;
    } else if (*p) {
        *p++ = 0;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    s->value = p;
    while (*p && *p != ' ' && *p != '\t')
        p++;
    *p = 0;
    return *s->name && *s->value ? 0 : -1;
}

/* {"k":"v",...} from Prometheus label text (k="v",...; values escape \\ \" \n). */
static void print_labels_json(const char *l)
{
    putchar('{');
    bool first = true;
    while (*l) {
        const char *eq = strchr(l, '=');
        if (!eq || eq[1] != '"')
            break;
        if (!first)
            putchar(',');
        first = false;
        cli_json_string(stdout, l, (size_t)(eq - l));
        putchar(':');
        char val[1024];
        size_t n = 0;
        const char *p = eq + 2;
        for (; *p && *p != '"'; p++) {
            char ch = *p;
            if (ch == '\\' && p[1]) {
                p++;
                ch = *p == 'n' ? '\n' : *p;
            }
            if (n < sizeof(val))
                val[n++] = ch;
        }
        cli_json_string(stdout, val, n);
        l = *p ? p + 1 : p;
        while (*l == ',' || *l == ' ')
            l++;
    }
    putchar('}');
}

static void print_value_json(const char *v)
{
    char *end;
    double d = strtod(v, &end);
    if (*end || !isfinite(d))
        cli_json_cstr(stdout, v); /* NaN, +Inf: not JSON numbers */
    else
        fputs(v, stdout);
}

static int print_json(char *body)
{
    fputs("{\"samples\":[", stdout);
    bool first = true;
    for (char *line = strtok(body, "\n"); line; line = strtok(NULL, "\n")) {
        struct sample s;
        if (line[0] == '#' || parse_sample(line, &s))
            continue;
        fputs(first ? "{\"name\":" : ",{\"name\":", stdout);
        first = false;
        cli_json_cstr(stdout, s.name);
        fputs(",\"labels\":", stdout);
        print_labels_json(s.labels);
        fputs(",\"value\":", stdout);
        print_value_json(s.value);
        putchar('}');
    }
    fputs("]}\n", stdout);
    return 0;
}

/* Histogram state while its lines go by: buckets of one label set, then _sum and _count. */
struct hist {
    char family[256];
    char labels[1024]; /* without le */
    double bounds[64], cum[64];
    int nb;
    double sum, count;
};

/* Label text without its le="..." pair, into out. Returns the le value (or NULL). */
static const char *strip_le(const char *labels, char *out, size_t size, char *le, size_t le_size)
{
    const char *found = NULL;
    size_t o = 0;
    const char *p = labels;
    while (*p) {
        const char *start = p;
        bool quoted = false;
        for (; *p && (quoted || *p != ','); p++) {
            if (quoted && *p == '\\' && p[1])
                p++;
            else if (*p == '"')
                quoted = !quoted;
        }
        size_t n = (size_t)(p - start);
        if (n > 4 && !strncmp(start, "le=\"", 4)) {
            snprintf(le, le_size, "%.*s", (int)(n - 5), start + 4);
            found = le;
        } else if (o + n + 2 < size) {
            if (o)
                out[o++] = ',';
            memcpy(out + o, start, n);
            o += n;
        }
        if (*p == ',')
            p++;
    }
    out[o] = 0;
    return found;
}

static double hist_quantile(const struct hist *h, double q)
{
    for (int i = 0; i < h->nb; i++)
        if (h->cum[i] >= q * h->count)
            return h->bounds[i];
    return INFINITY;
}

static void fmt_bound(double b, char *out, size_t size)
{
    if (isinf(b))
        snprintf(out, size, "+Inf");
    else
        snprintf(out, size, "%g", b);
}

static void hist_print(const struct hist *h)
{
    if (!h->family[0])
        return;
    char p50[32], p99[32];
    fmt_bound(hist_quantile(h, 0.5), p50, sizeof(p50));
    fmt_bound(hist_quantile(h, 0.99), p99, sizeof(p99));
    printf("  %s%s%s%s  count %.0f", h->family, h->labels[0] ? "{" : "", h->labels,
           h->labels[0] ? "}" : "", h->count);
    if (h->count > 0)
        printf(", mean %g, p50 <= %s, p99 <= %s", h->sum / h->count, p50, p99);
    putchar('\n');
}

static bool ends_with(const char *s, const char *suffix, size_t *stem)
{
    size_t n = strlen(s), k = strlen(suffix);
    if (n <= k || strcmp(s + n - k, suffix))
        return false;
    *stem = n - k;
    return true;
}

static int print_human(char *body, const char *addr)
{
    /* Families declared as histograms (# TYPE name histogram), collected first. */
    char *types = strdup(body);
    if (!types)
        return 1;
    char hist_names[256][128];
    int nhist = 0;
    for (char *line = strtok(types, "\n"); line; line = strtok(NULL, "\n")) {
        char name[128], type[32];
        if (sscanf(line, "# TYPE %127s %31s", name, type) == 2 && !strcmp(type, "histogram") &&
            nhist < 256)
            snprintf(hist_names[nhist++], sizeof(hist_names[0]), "%s", name);
    }
    free(types);

    printf("metrics from http://%s/metrics\n", addr);
    struct hist h = {.nb = 0};
    int samples = 0;
    for (char *line = strtok(body, "\n"); line; line = strtok(NULL, "\n")) {
        struct sample s;
        if (line[0] == '#' || parse_sample(line, &s))
            continue;
        samples++;
        size_t stem = 0;
        const char *part = NULL;
        if (ends_with(s.name, "_bucket", &stem))
            part = "bucket";
        else if (ends_with(s.name, "_sum", &stem))
            part = "sum";
        else if (ends_with(s.name, "_count", &stem))
            part = "count";
        bool is_hist = false;
        for (int i = 0; part && i < nhist && !is_hist; i++)
            is_hist = strlen(hist_names[i]) == stem && !strncmp(hist_names[i], s.name, stem);
        if (!is_hist) {
            hist_print(&h);
            memset(&h, 0, sizeof(h));
            printf("  %s%s%s%s  %s\n", s.name, s.labels[0] ? "{" : "", s.labels,
                   s.labels[0] ? "}" : "", s.value);
            continue;
        }
        char labels[1024], le[64];
        const char *le_val = strip_le(s.labels, labels, sizeof(labels), le, sizeof(le));
        if (strncmp(h.family, s.name, stem) || h.family[stem] || strcmp(h.labels, labels)) {
            hist_print(&h);
            memset(&h, 0, sizeof(h));
            snprintf(h.family, sizeof(h.family), "%.*s", (int)stem, s.name);
            snprintf(h.labels, sizeof(h.labels), "%s", labels);
        }
        double v = strtod(s.value, NULL);
        if (!strcmp(part, "bucket") && le_val && h.nb < 64) {
            h.bounds[h.nb] = strtod(le_val, NULL); /* "+Inf" parses as infinity */
            h.cum[h.nb++] = v;
        } else if (!strcmp(part, "sum")) {
            h.sum = v;
        } else if (!strcmp(part, "count")) {
            h.count = v;
        }
    }
    hist_print(&h);
    if (!samples)
        printf("  (no metrics yet)\n");
    return 0;
}

int cli_stats_main(int argc, char **argv)
{
    const char *cmd = "stats";
    struct cli_common c;
    cli_common_init(&c);
    bool raw = false;
    const struct cli_opt opts[] = {
        {"--metrics", CLI_STRING, &c.metrics, 0, 0, NULL},
        {"--raw", CLI_FLAG, &raw, 0, 0, NULL},
        {NULL, CLI_FLAG, NULL, 0, 0, NULL},
    };
    int rc = cli_parse(cmd, argc, argv, opts, &c, NULL, 0, 0);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (raw && c.json)
        return cli_usage_error(cmd, "--raw and --json exclude each other");
    struct buf resp = {0};
    char *body;
    size_t len;
    int status = http_get(&c, &resp);
    if (!status)
        status = http_body(&c, &resp, &body, &len);
    if (!status) {
        if (raw) {
            fwrite(body, 1, len, stdout);
        } else {
            body[len] = 0;
            status = c.json ? print_json(body) : print_human(body, c.metrics);
        }
    }
    free(resp.p);
    return status;
}
