/*
 * report.h - formatting a message for an sb_log_fn (recovery, retention, write errors): the one
 * place library code turns a problem into text; it never prints.
 */
#ifndef SB_REPORT_H
#define SB_REPORT_H

#include <shardbus.h>

/** sb_report - format and hand a message to @fn (nothing when @fn is NULL). Any thread. */
__attribute__((format(printf, 4, 5))) void sb_report(sb_log_fn fn, void *ctx,
                                                     enum sb_log_level level, const char *fmt,
                                                     ...);

#endif /* SB_REPORT_H */
