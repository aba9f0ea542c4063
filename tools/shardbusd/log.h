/*
 * log.h - shardbusd's log lines on stderr:
 *
 *     2026-11-26T20:01:02.123Z shardbusd[4242] INFO listening on 127.0.0.1:9092
 *
 * One line per event, UTC with milliseconds, written with a single write(2) of at most
 * SBD_LOG_LINE_MAX bytes (<= PIPE_BUF), so lines from different threads never interleave, even
 * through a pipe to journald.
 */
#ifndef SBD_LOG_H
#define SBD_LOG_H

#include <stddef.h>

#include <shardbus.h>

/** Longest line written, newline included; longer messages are cut and end in "...". */
#define SBD_LOG_LINE_MAX 4096

/**
 * sbd_log - write one log line at @level (printf-style message, no trailing newline needed;
 * control characters such as newlines in the message are written as spaces so that a line is
 * always one event). Never fails (a failed write is dropped: there is nowhere else to report
 * it). Any thread; blocks only as long as write(2) on stderr does.
 */
__attribute__((format(printf, 2, 3))) void sbd_log(enum sb_log_level level, const char *fmt,
                                                    ...);

/**
 * sbd_log_fn - sbd_log() as an sb_log_fn for sb_config.log_fn and sb_server_config.log_fn
 * (@ctx unused). Any thread, shard threads included.
 */
void sbd_log_fn(void *ctx, enum sb_log_level level, const char *message);

/**
 * sbd_log_format - format a line into @buf (@size bytes, at least 64) without writing it, for
 * the tests: returns the line's length (newline included, no NUL counted). Any thread.
 */
size_t sbd_log_format(char *buf, size_t size, enum sb_log_level level, const char *message);

#endif /* SBD_LOG_H */
