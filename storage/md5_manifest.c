/* storage/md5_manifest.c — the md5 manifest of the official Z-Image-Turbo
 * release and the check of one file against it (storage/md5.h). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/zt_input.h"
#include "storage/md5.h"
#include "storage/safetensors.h"

/* Spec §1.1 (src/config/manifests/z-image-turbo.txt of Tongyi-MAI/Z-Image). */
const zt_manifest_entry zt_manifest_zimage_turbo[ZT_MANIFEST_FILES] = {
    {"model_index.json", "5e3226ed72a9a4a080f2a4ca78b98ddc"},
    {"scheduler/scheduler_config.json", "ca682fcc6c5a94cf726b7187e64b9411"},
    {"text_encoder/config.json", "1e97eb35d9d0b6aa60c58a8df8d7d99a"},
    {"text_encoder/model-00001-of-00003.safetensors", "30b85686b9a9b002e012494fadc027cb"},
    {"text_encoder/model-00002-of-00003.safetensors", "e6a24ea164404a01ad2800dbae4e1a13"},
    {"text_encoder/model-00003-of-00003.safetensors", "09e190ed15ff14795b6277e023cfcb2d"},
    {"text_encoder/model.safetensors.index.json", "589f5395156900f49d617aee8a8d8708"},
    {"tokenizer/tokenizer.json", "6423133b9cc1a2077b57822c30c211aa"},
    {"tokenizer/tokenizer_config.json", "b06e103ac555ec4b51266078b518c0f0"},
    {"transformer/config.json", "baed87136fe5f848e24b072f99856cc3"},
    {"transformer/diffusion_pytorch_model-00001-of-00003.safetensors", "54889d0dd179b4fa2fd7bd0e487d856e"},
    {"transformer/diffusion_pytorch_model-00002-of-00003.safetensors", "fe81e804658d345323512c63224b0604"},
    {"transformer/diffusion_pytorch_model-00003-of-00003.safetensors", "4e074e09129f98ad840414951f122feb"},
    {"transformer/diffusion_pytorch_model.safetensors.index.json", "76d788eb0d42c59cc8f8ec007db639aa"},
    {"vae/config.json", "ba9e2980c8630b4abccc643bc9f4a542"},
    {"vae/diffusion_pytorch_model.safetensors", "6f83de55cb720c7fae051b14528577bf"},
};

const char *zt_file_status_name(zt_file_status s) {
    switch (s) {
    case ZT_FILE_OK: return "OK";
    case ZT_FILE_MISSING: return "MISSING";
    case ZT_FILE_CORRUPT: return "CORRUPT";
    case ZT_FILE_UNREADABLE: return "UNREADABLE";
    }
    return "?";
}

static int path_ok(const char *p) {
    if (!*p || *p == '/') return 0;
    for (const char *c = p; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) return 0;
    for (const char *c = p; c;) { /* no empty, "." or ".." components */
        const char *end = strchr(c, '/');
        size_t n = end ? (size_t)(end - c) : strlen(c);
        if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.')) return 0;
        c = end ? end + 1 : NULL;
    }
    return 1;
}

void zt_manifest_free(zt_manifest_entry *entries, int n) {
    for (int i = 0; i < n; i++) {
        free((char *)entries[i].path);
        free((char *)entries[i].md5);
    }
    free(entries);
}

int zt_manifest_load(const char *path, zt_manifest_entry **entries, int *n, zt_err *e) {
    *entries = NULL;
    *n = 0;
    /* 65536 lines of ~100 bytes fit 16 MiB many times over */
    char *text;
    size_t text_len;
    int rc0 = zt_file_read_all(path, 16ull << 20, "a manifest", &text, &text_len, e);
    if (rc0) return rc0;
    FILE *f = fmemopen(text, text_len ? text_len : 1, "r");
    if (!f) {
        free(text);
        return zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", path);
    }
    zt_manifest_entry *v = NULL;
    int cnt = 0, cap = 0, rc = ZT_OK, line = 0;
    char buf[4200];
    while (!rc && fgets(buf, sizeof buf, f)) {
        line++;
        size_t l = strlen(buf);
        if (l && buf[l - 1] != '\n' && !feof(f)) {
            rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: line %d is too long", path, line);
            break;
        }
        while (l && (buf[l - 1] == '\n' || buf[l - 1] == '\r')) buf[--l] = 0;
        if (!l || buf[0] == '#') continue;
        int hex = l > 34;
        for (int k = 0; hex && k < 32; k++) hex = strchr("0123456789abcdefABCDEF", buf[k]) != NULL;
        if (!hex || buf[32] != ' ' || (buf[33] != ' ' && buf[33] != '*') || !path_ok(buf + 34)) {
            rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: line %d is not '<md5>  <relative path>'", path, line);
            break;
        }
        if (cnt == 65536) {
            rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: more than 65536 files", path);
            break;
        }
        if (cnt == cap) {
            cap = cap ? 2 * cap : 32;
            zt_manifest_entry *nv = realloc(v, (size_t)cap * sizeof *nv);
            if (!nv) {
                rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            v = nv;
        }
        char *md5 = strndup(buf, 32), *p = strdup(buf + 34);
        if (!md5 || !p) {
            free(md5);
            free(p);
            rc = zt_err_set(e, ZT_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
        for (int k = 0; k < 32; k++) md5[k] = (char)(md5[k] >= 'A' && md5[k] <= 'F' ? md5[k] - 'A' + 'a' : md5[k]);
        v[cnt++] = (zt_manifest_entry){p, md5};
    }
    if (!rc && ferror(f)) rc = zt_err_set(e, ZT_ERR_IO, "%s: read failed", path);
    fclose(f);
    free(text);
    if (!rc && !cnt) rc = zt_err_set(e, ZT_ERR_FORMAT, "%s: no '<md5>  <path>' line", path);
    if (rc) {
        zt_manifest_free(v, cnt);
        return rc;
    }
    *entries = v;
    *n = cnt;
    return ZT_OK;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !memcmp(s + a - b, suf, b);
}

static void verdict(zt_file_check *out, zt_file_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void verdict(zt_file_check *out, zt_file_status st, const char *fmt, ...) {
    out->status = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->detail, sizeof out->detail, fmt, ap);
    va_end(ap);
}

/* The message of a library error without the leading "path: " it names. */
static const char *cause(const zt_err *er, const char *path) {
    size_t n = strlen(path);
    return !strncmp(er->msg, path, n) && er->msg[n] == ':' && er->msg[n + 1] == ' ' ? er->msg + n + 2 : er->msg;
}

static void quick_check(const char *path, zt_file_check *out) {
    zt_err er = {0};
    if (ends_with(path, ".safetensors")) {
        zt_st_file f;
        if (zt_st_open(path, &f, &er)) {
            verdict(out, er.code == ZT_ERR_IO ? ZT_FILE_UNREADABLE : ZT_FILE_CORRUPT, "%s", cause(&er, path));
            return;
        }
        uint64_t end = 0;
        for (int i = 0; i < f.n_tensors; i++) end = ZT_MAX(end, f.tensors[i].end);
        if (f.data_offset + end != f.file_size)
            verdict(out, ZT_FILE_CORRUPT, "%llu bytes, but its header describes %llu",
                    (unsigned long long)f.file_size, (unsigned long long)(f.data_offset + end));
        zt_st_close(&f);
        return;
    }
    if (ends_with(path, ".json")) {
        char *buf;
        size_t n;
        zt_err re = {0};
        const int rrc = zt_file_read_all(path, 64ull << 20, "a JSON file", &buf, &n, &re);
        if (rrc) {
            verdict(out, rrc == ZT_ERR_FORMAT ? ZT_FILE_CORRUPT : ZT_FILE_UNREADABLE, "%s", cause(&re, path));
            return;
        }
        json_error_t je;
        json_t *j = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &je);
        if (!j) verdict(out, ZT_FILE_CORRUPT, "invalid JSON at line %d: %s", je.line, je.text);
        else if (!json_is_object(j)) verdict(out, ZT_FILE_CORRUPT, "not a JSON object");
        json_decref(j);
        if (j && out->status == ZT_FILE_OK && ends_with(path, ".safetensors.index.json")) {
            int nt = 0;
            char **ts = NULL, **ss = NULL;
            if (zt_st_index_parse(path, buf, n, &nt, &ts, &ss, &er)) verdict(out, ZT_FILE_CORRUPT, "%s", cause(&er, path));
            else zt_st_index_free(nt, ts, ss);
        }
        free(buf);
        return;
    }
    /* other files: readable is all a quick check can say */
    int fd;
    zt_err re = {0};
    if (zt_file_open(path, &fd, NULL, &re)) verdict(out, ZT_FILE_UNREADABLE, "%s", cause(&re, path));
    else close(fd);
}

int zt_manifest_check(const char *root, const zt_manifest_entry *entry, int quick, zt_md5_progress_fn progress,
                      void *ctx, zt_file_check *out, zt_err *e) {
    memset(out, 0, sizeof *out);
    char path[4400];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", root, entry->path) >= sizeof path)
        return zt_err_set(e, ZT_ERR_ARG, "%s: path too long", root);
    struct stat st;
    if (stat(path, &st)) {
        if (errno != ENOENT && errno != ENOTDIR) verdict(out, ZT_FILE_UNREADABLE, "cannot stat: %s", strerror(errno));
        else if (!lstat(path, &st)) verdict(out, ZT_FILE_MISSING, "a symbolic link to nothing");
        else out->status = ZT_FILE_MISSING;
        return ZT_OK;
    }
    if (!S_ISREG(st.st_mode)) {
        verdict(out, ZT_FILE_UNREADABLE, "not a regular file");
        return ZT_OK;
    }
    out->size = (uint64_t)st.st_size;
    if (quick) {
        quick_check(path, out);
        return ZT_OK;
    }
    uint8_t d[16];
    zt_err er = {0};
    int rc = zt_md5_file(path, progress, ctx, d, &er);
    if (rc == ZT_ERR_INTERRUPTED) {
        if (e) *e = er;
        return rc;
    }
    if (rc) {
        verdict(out, rc == ZT_ERR_MISSING ? ZT_FILE_MISSING : ZT_FILE_UNREADABLE, "%s", cause(&er, path));
        return ZT_OK;
    }
    zt_md5_hex(d, out->md5);
    if (strcmp(out->md5, entry->md5)) verdict(out, ZT_FILE_CORRUPT, "md5 %s, expected %s", out->md5, entry->md5);
    return ZT_OK;
}
