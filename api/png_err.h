/* api/png_err.h — libpng's error and warning callbacks for api/png.c (writing) and api/image_in.c
 * (reading): an error copies libpng's message and jumps back to the caller's setjmp; warnings are
 * dropped. Internal to api/. */
#ifndef ZT_API_PNG_ERR_H
#define ZT_API_PNG_ERR_H

#include <png.h>
#include <setjmp.h>
#include <stdio.h>

typedef struct {
    jmp_buf jb;
    char msg[200];
} zt_png_errctx;

/* libpng's error_fn; its error pointer is the zt_png_errctx. */
static void zt_png_on_error(png_structp png, png_const_charp msg) {
    zt_png_errctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    longjmp(c->jb, 1);
}

static void zt_png_on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

#endif
