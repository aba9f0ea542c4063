/* json.c - JSON strings and base64 for the CLI's --json output (see json.h). */
#include "json.h"

#include <stdint.h>

bool cli_utf8_valid(const void *ptr, size_t len)
{
    const unsigned char *p = ptr;
    size_t i = 0;
    while (i < len) {
        unsigned char c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            n = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (len - i < n)
            return false;
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n;
    }
    return true;
}

void cli_json_string(FILE *f, const void *ptr, size_t len)
{
    const unsigned char *p = ptr;
    putc('"', f);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        switch (c) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        case '\b':
            fputs("\\b", f);
            break;
        case '\f':
            fputs("\\f", f);
            break;
        default:
            if (c < 0x20 || c == 0x7f)
                fprintf(f, "\\u%04x", c);
            else
                putc(c, f);
        }
    }
    putc('"', f);
}

void cli_json_cstr(FILE *f, const char *s)
{
    if (!s) {
        fputs("null", f);
        return;
    }
    size_t n = 0;
    while (s[n])
        n++;
    if (cli_utf8_valid(s, n)) {
        cli_json_string(f, s, n);
    } else {
        /* Not UTF-8 (a name from a misbehaving peer): escape the bytes one by one. */
        putc('"', f);
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c >= 0x80 || c < 0x20 || c == '"' || c == '\\')
                fprintf(f, "\\u%04x", c);
            else
                putc(c, f);
        }
        putc('"', f);
    }
}

void cli_json_base64(FILE *f, const void *ptr, size_t len)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = ptr;
    putc('"', f);
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        putc(a[v >> 18], f);
        putc(a[(v >> 12) & 63], f);
        putc(a[(v >> 6) & 63], f);
        putc(a[v & 63], f);
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        putc(a[v >> 18], f);
        putc(a[(v >> 12) & 63], f);
        fputs("==", f);
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        putc(a[v >> 18], f);
        putc(a[(v >> 12) & 63], f);
        putc(a[(v >> 6) & 63], f);
        putc('=', f);
    }
    putc('"', f);
}

void cli_json_bytes_field(FILE *f, const char *name, const void *p, size_t len)
{
    fprintf(f, "\"%s\":", name);
    if (!p) {
        fputs("null", f);
    } else if (cli_utf8_valid(p, len)) {
        cli_json_string(f, p, len);
    } else {
        cli_json_base64(f, p, len);
        fprintf(f, ",\"%s_encoding\":\"base64\"", name);
    }
}
