/* models/limits.h — the limits of one image, defined once: what the public
 * API checks (api/zturbo.h), the command line offers (--width, --steps...),
 * the tokenizer keeps and the networks accept.
 *   ZT_MAX_TOKENS     caption tokens used: the first 512 ids of the formatted
 *                     prompt, as the reference pipeline truncates (spec §5.1)
 *   ZT_SIDE_MULTIPLE  image sides are multiples of 16 (VAE factor 8 x patch 2)
 *   ZT_MAX_SIDE       ... up to 2048 pixels (the DiT's position tables allow
 *                     more; the workspace and tests stop here)
 *   ZT_MAX_STEPS      transformer evaluations per image (Turbo is made for 8) */
#ifndef ZT_MODELS_LIMITS_H
#define ZT_MODELS_LIMITS_H

#define ZT_MAX_TOKENS 512
#define ZT_SIDE_MULTIPLE 16
#define ZT_MAX_SIDE 2048
#define ZT_MAX_STEPS 100

/* A limit as a string literal, for help and messages built at compile time. */
#define ZT_LIMIT_STR_(x) #x
#define ZT_LIMIT_STR(x) ZT_LIMIT_STR_(x)
/* "16 in 16..2048" */
#define ZT_SIDES_STR ZT_LIMIT_STR(ZT_SIDE_MULTIPLE) " in " ZT_LIMIT_STR(ZT_SIDE_MULTIPLE) ".." ZT_LIMIT_STR(ZT_MAX_SIDE)

#endif
