/* log.c - timestamped log lines on stderr, one write(2) each; see log.h. */
#include "log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *level_name(enum sb_log_level level)
{
    switch (level) {
    case SB_LOG_INFO:
        return "INFO";
    case SB_LOG_WARN:
        return "WARN";
    case SB_LOG_ERROR:
        return "ERROR";
    }
    return "ERROR";
}

size_t sbd_log_format(char *buf, size_t size, enum sb_log_level level, const char *message)
{
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    int w = snprintf(buf + n, size - n, ".%03ldZ shardbusd[%ld] %s ", now.tv_nsec / 1000000L,
                     (long)getpid(), level_name(level));
    n += w > 0 ? (size_t)w : 0;
    if (n > size - 2)
        n = size - 2;
    /* The message, with control characters as spaces; "..." when it does not fit. */
    size_t room = size - 1 - n; /* keeps one byte for the newline */
    size_t len = strlen(message);
    bool cut = len > room;
    if (cut)
        len = room >= 3 ? room - 3 : 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)message[i];
        buf[n++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
    }
    if (cut)
        for (int i = 0; i < 3 && n < size - 1; i++)
            buf[n++] = '.';
    buf[n++] = '\n';
    return n;
}

static void write_line(enum sb_log_level level, const char *message)
{
    char line[SBD_LOG_LINE_MAX];
    size_t n = sbd_log_format(line, sizeof(line), level, message);
    /* One call: a line of at most PIPE_BUF bytes is written whole or not at all to a pipe. */
    while (write(STDERR_FILENO, line, n) < 0 && errno == EINTR)
        ;
}

void sbd_log(enum sb_log_level level, const char *fmt, ...)
{
    char message[SBD_LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    if (n < 0)
        snprintf(message, sizeof(message), "(unformattable log message: %s)", fmt);
    write_line(level, message);
}

void sbd_log_fn(void *ctx, enum sb_log_level level, const char *message)
{
    (void)ctx;
    write_line(level, message ? message : "(null)");
}
