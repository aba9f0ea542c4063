/*
 * report.c - see report.h.
 */
#include "report.h"

#include <stdarg.h>
#include <stdio.h>

void sb_report(sb_log_fn fn, void *ctx, enum sb_log_level level, const char *fmt, ...)
{
    if (!fn)
        return;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fn(ctx, level, msg);
}
