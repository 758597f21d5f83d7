/* tools/zturbo/cmd_verify.c — `zturbo verify MODEL_DIR`: check a downloaded
 * Z-Image-Turbo snapshot against the md5 manifest of the official release
 * (storage/md5.h): one line per file, OK / MISSING / CORRUPT / UNREADABLE,
 * then the files the manifest does not know (ignored), then a summary.
 * Exit 0 only if all 16 files are OK.
 *
 * The big files are hashed in parallel (MD5 itself is sequential: one
 * thread per file), largest first; results print in manifest order as soon
 * as they are known; a progress line goes to stderr when it is a terminal. */
#include <ftw.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/zt_input.h"
#include "storage/md5.h"
#include "tools/zturbo/cli.h"
#include "tools/zturbo/options.h"

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

typedef struct {
    const char *root;
    int quick;
    const zt_manifest_entry *files;
    int n;
    int *order;          /* [n] work order: largest first */
    atomic_int next;
    atomic_int *done;    /* [n] */
    zt_file_check *res;  /* [n] */
    int *rc;             /* [n] */
    _Atomic uint64_t hashed;
} job;

static int on_bytes(void *ctx, uint64_t n) {
    atomic_fetch_add(&((job *)ctx)->hashed, n);
    return g_stop != 0;
}

static void *worker(void *arg) {
    job *j = arg;
    for (int k; (k = atomic_fetch_add(&j->next, 1)) < j->n;) {
        int i = j->order[k];
        zt_err e = {0};
        j->rc[i] = zt_manifest_check(j->root, &j->files[i], j->quick, on_bytes, j, &j->res[i], &e);
        atomic_store(&j->done[i], 1);
    }
    return NULL;
}

/* ---- extra files ------------------------------------------------------------- */

static struct {
    size_t root_len;
    const zt_manifest_entry *files;
    int n_files;
    int n;
    char first[3][256];
} g_extra;

static int on_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    if (ftw->level == 0) return FTW_CONTINUE;
    const char *base = p + ftw->base;
    if (base[0] == '.') return flag == FTW_D ? FTW_SKIP_SUBTREE : FTW_CONTINUE; /* .cache/, .git/, dot files */
    if (flag != FTW_F) return FTW_CONTINUE;
    const char *rel = p + g_extra.root_len + 1;
    for (int i = 0; i < g_extra.n_files; i++)
        if (!strcmp(rel, g_extra.files[i].path)) return FTW_CONTINUE;
    if (g_extra.n < 3) snprintf(g_extra.first[g_extra.n], sizeof g_extra.first[0], "%s", rel);
    g_extra.n++;
    return FTW_CONTINUE;
}

/* ---- output ------------------------------------------------------------------ */

static void print_result(const zt_manifest_entry *f, const zt_file_check *c) {
    printf("%-10s %s%s%s\n", zt_file_status_name(c->status), f->path, c->detail[0] ? ": " : "", c->detail);
    fflush(stdout);
}

static void print_progress(job *j, uint64_t total, double t0, int *shown) {
    char b1[32], b2[32];
    uint64_t h = atomic_load(&j->hashed);
    double dt = zt_now() - t0;
    int busy = 0;
    for (int i = 0; i < j->n; i++) busy += !atomic_load(&j->done[i]);
    fprintf(stderr, "\rverify: hashed %s of %s (%.0f%%), %.0f MB/s, %d file%s left   ", zt_fmt_bytes(h, b1, sizeof b1),
            zt_fmt_bytes(total, b2, sizeof b2), total ? 100.0 * (double)h / (double)total : 100.0,
            dt > 0 ? (double)h / dt / 1e6 : 0.0, busy, busy == 1 ? "" : "s");
    *shown = 1;
}

static void clear_progress(int *shown) {
    if (*shown) fprintf(stderr, "\r%*s\r", 78, "");
    *shown = 0;
}

enum { V_DIR, V_QUICK, V_MANIFEST, V_THREADS, V_QUIET, V_N };

static const cli_option k_opts[V_N] = {
    [V_DIR] = {"MODEL_DIR", NULL, CLI_POSITIONAL, .help = "the snapshot folder (the one holding model_index.json)"},
    [V_QUICK] = {"--quick", NULL, CLI_FLAG,
                 .help = "sizes and headers only (presence, JSON validity, safetensors\n"
                         "headers against file sizes); contents not checked, not hashed"},
    [V_MANIFEST] = {"--manifest", NULL, CLI_STRING, "FILE",
                    .help = "check against FILE instead, in md5sum format ('<md5>  <path>')"},
    [V_THREADS] = {"--threads", NULL, CLI_INT, "N", 1, 64, .def_help = "CPUs, at most 4", .help = "files hashed at once, 1..64"},
    [V_QUIET] = {"--quiet", "-q", CLI_FLAG, .help = "no progress line"},
};

static const char *k_usage =
    "usage: zturbo verify MODEL_DIR [--quick] [--manifest FILE] [--threads N] [-q]\n"
    "\n"
    "Check a downloaded Z-Image-Turbo snapshot folder against the md5 manifest of the\n"
    "official release (16 files). Prints OK, MISSING, CORRUPT or UNREADABLE per file;\n"
    "other files in the folder are listed as ignored. Exit status 0 only if all are OK.\n"
    "\n";

int cmd_verify(int argc, char **argv) {
    const cli_spec sp = {"verify", k_usage, NULL, k_opts, V_N, 0};
    cli_value v[V_N];
    int rc = cli_parse(&sp, argc, argv, v);
    if (rc) return rc == CLI_DONE ? ZT_EXIT_OK : rc;
    if (!v[V_DIR].set) return cli_missing(&sp, V_DIR);
    const int quick = v[V_QUICK].set, quiet = v[V_QUIET].set;
    int threads = v[V_THREADS].set ? (int)v[V_THREADS].i : 0;
    const char *manifest = v[V_MANIFEST].s;
    static char root[4096];
    snprintf(root, sizeof root, "%s", v[V_DIR].s);
    for (size_t l = strlen(root); l > 1 && root[l - 1] == '/'; l--) root[l - 1] = 0;
    struct stat st;
    zt_err e = {0};
    if (stat(root, &st)) return zt_err_errno(&e, errno, root, "cannot open the folder"), cli_fail(&e);
    if (!S_ISDIR(st.st_mode)) {
        zt_err_set(&e, ZT_ERR_IO, "%s: %s, not a folder (give the snapshot folder that holds model_index.json)", root,
                   zt_file_kind(st.st_mode));
        return cli_fail(&e);
    }
    if (!threads) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = (int)ZT_MAX(1, ZT_MIN(n, 4));
    }

    zt_manifest_entry *loaded = NULL;
    const zt_manifest_entry *files = zt_manifest_zimage_turbo;
    int n = ZT_MANIFEST_FILES;
    if (manifest) {
        if (zt_manifest_load(manifest, &loaded, &n, &e)) return cli_fail(&e);
        files = loaded;
    }
    job *j = calloc(1, sizeof *j);
    uint64_t *size = calloc((size_t)n, sizeof *size);
    if (j) {
        j->order = calloc((size_t)n, sizeof *j->order);
        j->done = calloc((size_t)n, sizeof *j->done);
        j->res = calloc((size_t)n, sizeof *j->res);
        j->rc = calloc((size_t)n, sizeof *j->rc);
    }
    if (!j || !size || !j->order || !j->done || !j->res || !j->rc) {
        zt_err_set(&e, ZT_ERR_NOMEM, "out of memory");
        return cli_fail(&e);
    }
    j->root = root;
    j->quick = quick;
    j->files = files;
    j->n = n;
    uint64_t total = 0;
    for (int i = 0; i < n; i++) {
        char p[8400];
        snprintf(p, sizeof p, "%s/%s", root, files[i].path);
        size[i] = !stat(p, &st) && S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
        total += size[i];
        j->order[i] = i;
    }
    for (int a = 1; a < n; a++) /* largest first, stable */
        for (int b = a; b > 0 && size[j->order[b]] > size[j->order[b - 1]]; b--) {
            int t = j->order[b];
            j->order[b] = j->order[b - 1];
            j->order[b - 1] = t;
        }
    free(size);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    const int tty = !quiet && !quick && isatty(2);
    printf("verify: %s against %s (%d file%s, %s)\n", root, manifest ? manifest : "the Z-Image-Turbo release manifest", n,
           n == 1 ? "" : "s", quick ? "--quick: sizes and headers; contents not checked" : "md5 of every byte");
    pthread_t th[64];
    int started = 0;
    for (; started < threads && started < n; started++)
        if (pthread_create(&th[started], NULL, worker, j)) break;
    if (!started) worker(j);
    const double t0 = zt_now();
    int printed = 0, shown = 0, interrupted = 0;
    while (printed < n) {
        int progressed = 0;
        while (printed < n && atomic_load(&j->done[printed])) {
            clear_progress(&shown);
            if (j->rc[printed] == ZT_ERR_INTERRUPTED) interrupted = 1;
            else print_result(&files[printed], &j->res[printed]);
            printed++;
            progressed = 1;
        }
        if (printed == n) break;
        if (tty && !progressed) print_progress(j, total, t0, &shown);
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    clear_progress(&shown);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    int count[4] = {0};
    for (int i = 0; i < n; i++) count[j->res[i].status]++;
    free(j->order);
    free((void *)j->done);
    free(j->res);
    free(j->rc);
    free(j);
    if (interrupted || g_stop) {
        zt_manifest_free(loaded, loaded ? n : 0);
        zt_err_set(&e, ZT_ERR_INTERRUPTED, "verify: interrupted");
        return cli_fail(&e);
    }

    g_extra.root_len = strlen(root);
    g_extra.files = files;
    g_extra.n_files = n;
    nftw(root, on_entry, 32, FTW_ACTIONRETVAL);
    zt_manifest_free(loaded, loaded ? n : 0);
    if (g_extra.n) {
        printf("ignored: %d other file%s (", g_extra.n, g_extra.n == 1 ? "" : "s");
        for (int i = 0; i < g_extra.n && i < 3; i++) printf("%s%s", i ? ", " : "", g_extra.first[i]);
        printf("%s)\n", g_extra.n > 3 ? ", ..." : "");
    }
    if (count[ZT_FILE_OK] == n) {
        if (quick)
            printf("verify: all %d files are present with the right sizes and sound headers; contents not checked "
                   "(run without --quick to compare md5s)\n",
                   n);
        else printf("verify: all %d files match %s\n", n, manifest ? "the manifest" : "the official Z-Image-Turbo release");
        return ZT_EXIT_OK;
    }
    printf("verify: %d OK, %d missing, %d corrupt, %d unreadable of %d: not %s (download the files marked above "
           "again)%s\n",
           count[ZT_FILE_OK], count[ZT_FILE_MISSING], count[ZT_FILE_CORRUPT], count[ZT_FILE_UNREADABLE], n,
           manifest ? "what the manifest lists" : "the official release",
           quick ? "; --quick: sizes and headers only, contents not checked" : "");
    return ZT_EXIT_FAIL;
}
