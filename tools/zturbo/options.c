/* tools/zturbo/options.c — table-driven option parsing (see options.h). */
#include "tools/zturbo/options.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/zt_common.h"
#include "tools/zturbo/cli.h"

/* "a|b|c" -> "a, b or c" */
static void choices_words(const char *c, char *buf, size_t n) {
    size_t k = 0, bars = 0, seen = 0;
    for (const char *s = c; *s; s++) bars += *s == '|';
    for (const char *s = c; *s && k + 6 < n; s++) {
        if (*s != '|') {
            buf[k++] = *s;
            continue;
        }
        seen++;
        const char *sep = seen == bars ? " or " : ", ";
        for (const char *q = sep; *q && k + 1 < n; q++) buf[k++] = *q;
    }
    buf[k] = 0;
}

static int is_choice(const char *choices, const char *s) {
    size_t len = strlen(s);
    for (const char *c = choices; *c;) {
        const char *bar = strchr(c, '|');
        size_t cl = bar ? (size_t)(bar - c) : strlen(c);
        if (cl == len && !strncmp(c, s, len)) return 1;
        if (!bar) break;
        c = bar + 1;
    }
    return 0;
}

/* Parse one value of option o (typed as `as`) into *v. */
static int parse_value(const char *cmd, const cli_option *o, const char *as, const char *s, cli_value *v) {
    char *end = NULL;
    errno = 0;
    switch (o->kind) {
    case CLI_FLAG: v->i = 1; return 0;
    case CLI_INT: {
        long long x = strtoll(s, &end, 10);
        if (!*s || *end || errno || x < o->lo || x > o->hi)
            return cli_usage_error(cmd, "%s '%s' not allowed: expected an integer in %lld..%lld", as, s, o->lo, o->hi);
        if (o->multiple && x % o->multiple)
            return cli_usage_error(cmd, "%s %lld not allowed: must be a multiple of %d in %lld..%lld", as, x, o->multiple,
                                   o->lo, o->hi);
        v->i = x;
        return 0;
    }
    case CLI_U64: {
        if (!*s || *s == '-') return cli_usage_error(cmd, "%s '%s' not allowed: expected 0..18446744073709551615", as, s);
        unsigned long long x = strtoull(s, &end, 10);
        if (*end || errno) return cli_usage_error(cmd, "%s '%s' not allowed: expected 0..18446744073709551615", as, s);
        v->u = x;
        return 0;
    }
    case CLI_SIZE: {
        zt_err e = {0};
        uint64_t x = 0;
        if (zt_parse_size(s, as, &x, &e)) return cli_usage_error(cmd, "%s", e.msg);
        if (x < (uint64_t)o->lo) {
            char b[32];
            return cli_usage_error(cmd, "%s %s not allowed: at least %s", as, s, zt_fmt_bytes((uint64_t)o->lo, b, sizeof b));
        }
        v->u = x;
        return 0;
    }
    case CLI_REAL: {
        double x = strtod(s, &end);
        if (!*s || *end || !(x > (double)o->lo && x < (double)o->hi))
            return cli_usage_error(cmd, "%s '%s' not allowed: expected a number in (%lld, %lld)", as, s, o->lo, o->hi);
        v->d = x;
        return 0;
    }
    case CLI_ENUM: {
        if (!is_choice(o->choices, s)) {
            char w[128];
            choices_words(o->choices, w, sizeof w);
            return cli_usage_error(cmd, "%s '%s' not allowed: %s", as, s, w);
        }
        v->s = s;
        return 0;
    }
    case CLI_STRING: v->s = s; return 0;
    }
    return cli_usage_error(cmd, "%s: bad option table", as);
}

int cli_options_parse(const char *cmd, const cli_option *t, int n, int argc, char **argv, cli_value *v) {
    memset(v, 0, sizeof *v * (size_t)n);
    for (int k = 0; k < n; k++)
        if (t[k].def) {
            int rc = parse_value(cmd, &t[k], t[k].name, t[k].def, &v[k]);
            if (rc) return rc;
        }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int k = 0;
        while (k < n && strcmp(a, t[k].name) && !(t[k].short_name && !strcmp(a, t[k].short_name))) k++;
        if (k == n) {
            if (!strcmp(a, "-h")) /* --help's short form, whatever the table calls it */
                for (k = 0; k < n && strcmp(t[k].name, "--help"); k++) {}
            if (k == n) return cli_usage_error(cmd, "unknown option '%s' (see --help)", a);
        }
        const cli_option *o = &t[k];
        if (o->kind == CLI_FLAG) {
            v[k].set = 1;
            v[k].i = 1;
            if (!strcmp(o->name, "--help")) return 0;
            continue;
        }
        if (i + 1 >= argc) return cli_usage_error(cmd, "option '%s' needs a value (see --help)", a);
        int rc = parse_value(cmd, o, a, argv[++i], &v[k]);
        if (rc) return rc;
        if (o->repeat) {
            if (v[k].n == CLI_MAX_REPEAT) return cli_usage_error(cmd, "%s given more than %d times", a, CLI_MAX_REPEAT);
            v[k].list[v[k].n++] = v[k].s;
        }
        v[k].set = 1;
    }
    return 0;
}

void cli_options_help(FILE *f, const char *usage, const cli_option *t, int n) {
    fputs(usage, f);
    for (int k = 0; k < n; k++) {
        const cli_option *o = &t[k];
        if (o->hidden) continue;
        if (o->section) fprintf(f, "\n%s\n", o->section);
        char left[96];
        snprintf(left, sizeof left, "%s%s%s%s%s", o->short_name ? o->short_name : "  ", o->short_name ? ", " : "  ",
                 o->name, o->metavar ? " " : "", o->metavar ? o->metavar : "");
        char tail[160] = "";
        if (o->def_help) snprintf(tail, sizeof tail, " (default: %s)", o->def_help);
        else if (o->def && o->kind != CLI_FLAG) snprintf(tail, sizeof tail, " (default %s)", o->def);
        fprintf(f, "  %-24s", left);
        if (strlen(left) > 23) fprintf(f, "\n  %-24s", "");
        int col = 26;
        for (const char *s = o->help; *s; s++) {
            if (*s == '\n') {
                fprintf(f, "\n  %-24s", "");
                col = 26;
            } else {
                fputc(*s, f);
                col++;
            }
        }
        if (*tail && col + (int)strlen(tail) > 92) fprintf(f, "\n  %-23s", "");
        fprintf(f, "%s\n", tail);
    }
}

void cli_options_print(FILE *f, const cli_option *t, int n, const cli_value *v) {
    for (int k = 0; k < n; k++) {
        const cli_option *o = &t[k];
        if (o->hidden || !strcmp(o->name, "--help") || !strcmp(o->name, "--print-config")) continue;
        char val[64];
        const char *s = val;
        int have = v[k].set || o->def;
        switch (o->kind) {
        case CLI_FLAG: s = v[k].set ? "on" : "off"; have = 1; break;
        case CLI_INT: snprintf(val, sizeof val, "%lld", v[k].i); break;
        case CLI_U64: snprintf(val, sizeof val, "%llu", (unsigned long long)v[k].u); break;
        case CLI_SIZE:
            if (v[k].u == UINT64_MAX) s = "unlimited";
            else zt_fmt_bytes(v[k].u, val, sizeof val);
            break;
        case CLI_REAL: snprintf(val, sizeof val, "%g", v[k].d); break;
        case CLI_STRING:
        case CLI_ENUM: s = v[k].s; have = s != NULL; break;
        }
        if (o->repeat && v[k].n > 1) { /* one line per value */
            for (int r = 0; r < v[k].n; r++) fprintf(f, "%-18s %s\n", o->name + 2, v[k].list[r]);
            continue;
        }
        fprintf(f, "%-18s %s%s\n", o->name + 2, have ? s : o->def_help ? o->def_help : "-", v[k].set == 2 ? "  (resolved)" : v[k].set ? "" : "  (default)");
    }
}

int cli_parse_bands(const char *cmd, const char *s, int *level, int *rows) {
    char *end = NULL;
    errno = 0;
    const long lv = strtol(s, &end, 10);
    const int ok1 = end != s && *end == ',' && lv >= 1 && lv <= 16;
    const char *r = ok1 ? end + 1 : s;
    const long rw = ok1 ? strtol(r, &end, 10) : 0;
    if (!ok1 || end == r || *end || errno || rw < 1 || rw > 65536)
        return cli_usage_error(cmd, "--vae-bands '%s' not allowed: LEVEL,ROWS with LEVEL in 1..16 and ROWS in 1..65536", s);
    *level = (int)lv;
    *rows = (int)rw;
    return 0;
}
