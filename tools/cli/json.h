/*
 * json.h - JSON output for the CLI: strings escaped per RFC 8259, and bytes that are not UTF-8
 * carried as base64 (JSON strings cannot hold arbitrary bytes).
 */
#ifndef SB_CLI_JSON_H
#define SB_CLI_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Whether p[0..len) is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool cli_utf8_valid(const void *p, size_t len);

/* "..." with ", \ and control characters escaped; p must be valid UTF-8 (bytes pass as is). */
void cli_json_string(FILE *f, const void *p, size_t len);

/* cli_json_string() of a NUL-terminated string, or null for NULL. */
void cli_json_cstr(FILE *f, const char *s);

/* "..." holding the standard base64 (RFC 4648, padded) of p[0..len). */
void cli_json_base64(FILE *f, const void *p, size_t len);

/*
 * cli_json_bytes_field - `"NAME":VALUE` for a message's bytes: null for NULL, a JSON string if
 * the bytes are UTF-8, else the base64 string followed by `,"NAME_encoding":"base64"`.
 */
void cli_json_bytes_field(FILE *f, const char *name, const void *p, size_t len);

#endif
