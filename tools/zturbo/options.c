/* tools/zturbo/options.c — table-driven option parsing (see options.h). */
#include "tools/zturbo/options.h"

#include <stdlib.h>
#include <string.h>

#include "api/zturbo.h"
#include "common/zt_common.h"
#include "common/zt_input.h"
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

static int in_scope(const cli_spec *sp, const cli_option *o) { return !o->scope || !sp->scope || (o->scope & sp->scope); }

/* The value as a message shows it: plain when it reads as a number, else quoted. */
static const char *shown(const char *s, char *buf, size_t n) {
    double d;
    if (!zt_parse_real(s, &d)) snprintf(buf, n, "%.60s", s);
    else snprintf(buf, n, "'%.60s%s'", s, strlen(s) > 60 ? "..." : "");
    return buf;
}

/* Parse one value of option o (named `as` in messages) into *v. */
static int parse_value(const cli_spec *sp, const cli_option *o, const char *as, const char *s, cli_value *v) {
    char q[80];
    const char *cmd = sp->cmd;
    switch (o->kind) {
    case CLI_FLAG: v->i = 1; return 0;
    case CLI_INT: {
        int64_t x = 0;
        const int bad = zt_parse_i64(s, &x) || x < o->lo || x > o->hi || (o->multiple && x % o->multiple);
        if (bad && o->multiple)
            return cli_usage_error(cmd, "%s %s not allowed: must be a multiple of %d in %lld..%lld", as, shown(s, q, sizeof q),
                                   o->multiple, o->lo, o->hi);
        if (bad)
            return cli_usage_error(cmd, "%s %s not allowed: must be an integer in %lld..%lld", as, shown(s, q, sizeof q), o->lo,
                                   o->hi);
        v->i = x;
        return 0;
    }
    case CLI_U64:
        if (zt_parse_u64(s, &v->u))
            return cli_usage_error(cmd, "%s %s not allowed: must be an integer in 0..18446744073709551615", as,
                                   shown(s, q, sizeof q));
        return 0;
    case CLI_SEED: {
        /* the library's rule and words ("seed ... not allowed: ..."), under the option's name */
        char err[256];
        if (zturbo_seed_parse(s, &v->u, &v->random, err, sizeof err))
            return cli_usage_error(cmd, "%s%s", as, strchr(err, ' ') ? strchr(err, ' ') : err);
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
        double x = 0;
        if (zt_parse_real(s, &x) || !(x > (double)o->lo && x < (double)o->hi))
            return cli_usage_error(cmd, "%s %s not allowed: must be a number above %lld and below %lld", as,
                                   shown(s, q, sizeof q), o->lo, o->hi);
        v->d = x;
        return 0;
    }
    case CLI_ENUM:
        if (!is_choice(o->choices, s)) {
            char w[128];
            choices_words(o->choices, w, sizeof w);
            return cli_usage_error(cmd, "%s '%s' not allowed: %s", as, s, w);
        }
        v->s = s;
        return 0;
    case CLI_STRING:
    case CLI_POSITIONAL: v->s = s; return 0;
    }
    return cli_usage_error(cmd, "%s: bad option table", as);
}

static void print_version(void) { printf("zturbo %s\n", zturbo_version()); }

int cli_parse(const cli_spec *sp, int argc, char **argv, cli_value *v) {
    const cli_option *t = sp->opts;
    const int n = sp->n;
    if (n) memset(v, 0, sizeof *v * (size_t)n);
    for (int k = 0; k < n; k++)
        if (t[k].def) {
            int rc = parse_value(sp, &t[k], t[k].name, t[k].def, &v[k]);
            if (rc) return rc;
        }
    int options_end = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int k = n;
        const char *val = NULL; /* --name=value, -xVALUE */
        char name[128];
        if (!options_end && !strcmp(a, "--")) {
            options_end = 1;
            continue;
        }
        if (options_end || a[0] != '-' || !a[1]) { /* an argument ("-" is stdin) */
            for (k = 0; k < n; k++)
                if (t[k].kind == CLI_POSITIONAL && in_scope(sp, &t[k]) && !v[k].set) break;
            if (k == n) return cli_usage_error(sp->cmd, "unexpected argument '%s' (see --help)", a);
            v[k].s = a;
            v[k].set = CLI_GIVEN;
            continue;
        }
        if (a[1] == '-') {
            const char *eq = strchr(a, '=');
            const size_t len = eq ? (size_t)(eq - a) : strlen(a);
            if (len >= sizeof name) return cli_usage_error(sp->cmd, "unknown option '%.40s...' (see --help)", a);
            memcpy(name, a, len);
            name[len] = 0;
            if (eq) val = eq + 1;
            for (k = 0; k < n && (t[k].kind == CLI_POSITIONAL || strcmp(name, t[k].name)); k++) {}
        } else {
            snprintf(name, sizeof name, "%s", a);
            for (k = 0; k < n && !(t[k].short_name && !strcmp(a, t[k].short_name)); k++) {}
            if (k == n && strlen(a) > 2) { /* -W512 */
                for (k = 0; k < n; k++)
                    if (t[k].short_name && t[k].kind != CLI_FLAG && !strncmp(a, t[k].short_name, 2) && !t[k].short_name[2]) break;
                if (k < n) {
                    name[2] = 0;
                    val = a + 2;
                }
            }
        }
        if (k == n) {
            const int help = !strcmp(name, "--help") || !strcmp(name, "-h");
            if ((help || !strcmp(name, "--version")) && !val) {
                if (help) cli_help(stdout, sp);
                else print_version();
                return CLI_DONE;
            }
            return cli_usage_error(sp->cmd, "unknown option '%s' (see --help)", name);
        }
        const cli_option *o = &t[k];
        if (!in_scope(sp, o)) return cli_usage_error(sp->cmd, "%s is not an option of %s (see --help)", name, sp->cmd);
        if (o->kind == CLI_FLAG) {
            if (val) return cli_usage_error(sp->cmd, "%s takes no value", name);
            v[k].set = CLI_GIVEN;
            v[k].i = 1;
            continue;
        }
        if (!val) {
            if (i + 1 >= argc) return cli_usage_error(sp->cmd, "%s needs a value (see --help)", name);
            val = argv[++i];
        }
        if (o->repeat) {
            if (v[k].n == CLI_MAX_REPEAT)
                return cli_usage_error(sp->cmd, "%s given more than %d times", name, CLI_MAX_REPEAT);
            int rc = parse_value(sp, o, name, val, &v[k]);
            if (rc) return rc;
            v[k].list[v[k].n++] = v[k].s;
            v[k].set = CLI_GIVEN;
            continue;
        }
        cli_value nv = {0};
        int rc = parse_value(sp, o, name, val, &nv);
        if (rc) return rc;
        nv.set = CLI_GIVEN;
        v[k] = nv;
    }
    return 0;
}

int cli_missing(const cli_spec *sp, int k) {
    const cli_option *o = &sp->opts[k];
    if (o->kind == CLI_POSITIONAL) return cli_usage_error(sp->cmd, "missing %s (see --help)", o->name);
    return cli_usage_error(sp->cmd, "missing %s%s%s (see --help)", o->short_name ? o->short_name : o->name,
                           o->metavar ? " " : "", o->metavar ? o->metavar : "");
}

/* Help text of one option, wrapped at '\n' into the help column. */
static void help_line(FILE *f, const char *left, const char *text, const char *tail) {
    fprintf(f, "  %-24s", left);
    if (strlen(left) > 23) fprintf(f, "\n  %-24s", "");
    int col = 26;
    for (const char *s = text; *s; s++) {
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

void cli_help(FILE *f, const cli_spec *sp) {
    fputs(sp->usage, f);
    for (int k = 0; k < sp->n; k++) {
        const cli_option *o = &sp->opts[k];
        if (o->hidden || !in_scope(sp, o)) continue;
        if (o->section) fprintf(f, "\n%s\n", o->section);
        char left[96], tail[200] = "";
        if (o->kind == CLI_POSITIONAL) snprintf(left, sizeof left, "%s", o->name);
        else
            snprintf(left, sizeof left, "%s%s%s%s%s", o->short_name ? o->short_name : "  ", o->short_name ? ", " : "  ",
                     o->name, o->metavar ? " " : "", o->metavar ? o->metavar : "");
        size_t tl = 0;
        if (o->def_help) tl += (size_t)snprintf(tail, sizeof tail, " (default: %s)", o->def_help);
        else if (o->def && o->kind != CLI_FLAG) tl += (size_t)snprintf(tail, sizeof tail, " (default %s)", o->def);
        if (o->comfy && tl < sizeof tail) snprintf(tail + tl, sizeof tail - tl, " [ComfyUI: %s]", o->comfy);
        help_line(f, left, o->help, tail);
    }
    fputc('\n', f);
    help_line(f, "-h, --help", "this help", "");
    help_line(f, "    --version", "print the version", "");
    if (sp->epilog) fprintf(f, "\n%s", sp->epilog);
}

void cli_print_config(FILE *f, const cli_spec *sp, const cli_value *v) {
    for (int k = 0; k < sp->n; k++) {
        const cli_option *o = &sp->opts[k];
        if (o->hidden || !in_scope(sp, o) || !strcmp(o->name, "--print-config")) continue;
        char val[96];
        const char *s = val;
        int have = v[k].set || o->def;
        switch (o->kind) {
        case CLI_FLAG: s = v[k].set ? "on" : "off"; have = 1; break;
        case CLI_INT: snprintf(val, sizeof val, "%lld", v[k].i); break;
        case CLI_U64: snprintf(val, sizeof val, "%llu", (unsigned long long)v[k].u); break;
        case CLI_SEED:
            if (v[k].random || !v[k].set) s = "random (drawn at the start of the run and printed)";
            else snprintf(val, sizeof val, "%llu", (unsigned long long)v[k].u);
            have = 1;
            break;
        case CLI_SIZE:
            if (v[k].u == UINT64_MAX) s = "unlimited";
            else {
                char b[32];
                snprintf(val, sizeof val, "%s (%llu bytes)", zt_fmt_bytes(v[k].u, b, sizeof b), (unsigned long long)v[k].u);
            }
            break;
        case CLI_REAL: snprintf(val, sizeof val, "%g", v[k].d); break;
        case CLI_STRING:
        case CLI_ENUM:
        case CLI_POSITIONAL: s = v[k].s; have = s != NULL; break;
        }
        const char *name = o->kind == CLI_POSITIONAL ? o->name : o->name + 2;
        if (o->repeat && v[k].n > 0 && !v[k].text) { /* one line per value, in order */
            for (int r = 0; r < v[k].n; r++) fprintf(f, "%-18s %s\n", name, v[k].list[r]);
            continue;
        }
        const char *shown_v = v[k].text ? v[k].text : have ? s : o->def_help ? o->def_help : "-";
        if (v[k].set == CLI_RESOLVED) fprintf(f, "%-18s %s  (resolved%s%s)\n", name, shown_v, v[k].note ? ": " : "", v[k].note ? v[k].note : "");
        else if (v[k].set == CLI_AT_RUN) fprintf(f, "%-18s %s  (at run time)\n", name, shown_v);
        else fprintf(f, "%-18s %s%s\n", name, shown_v, v[k].set ? "" : "  (default)");
    }
}

int cli_parse_bands(const char *cmd, const char *s, int *level, int *rows) {
    /* two decimal integers (common/zt_input.h: no blanks, no '+') around one comma */
    char buf[64];
    const char *comma = strchr(s, ',');
    int64_t lv = 0, rw = 0;
    const size_t n = comma ? (size_t)(comma - s) : 0;
    int ok = comma && n < sizeof buf;
    if (ok) {
        memcpy(buf, s, n);
        buf[n] = 0;
        ok = !zt_parse_i64(buf, &lv) && !zt_parse_i64(comma + 1, &rw) && lv >= 1 && lv <= 16 && rw >= 1 && rw <= 65536;
    }
    if (!ok)
        return cli_usage_error(cmd, "--vae-bands '%.60s' not allowed: LEVEL,ROWS with LEVEL in 1..16 and ROWS in 1..65536", s);
    *level = (int)lv;
    *rows = (int)rw;
    return 0;
}
