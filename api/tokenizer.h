/* api/tokenizer.h — the Qwen3 tokenizer (byte-level BPE) and the chat template
 * of Z-Image-Turbo, exact against Hugging Face `tokenizers` (spec §5).
 *
 * Input file: the model's own tokenizer/tokenizer.json (the Hugging Face
 * `tokenizers` serialization), read at run time. The subset this engine accepts,
 * anything else is ZT_ERR_UNSUPPORTED naming the key:
 *   model           {"type":"BPE", "vocab":{token:id,...}, "merges":[["a","b"],...]
 *                    or ["a b",...], dropout null, unk_token null, byte_fallback false,
 *                    continuing_subword_prefix/end_of_word_suffix null or "",
 *                    ignore_merges true|false}; every vocab token is a byte-level string
 *                    (each char one of the 256 ByteLevel characters); the rank of a
 *                    merge is its index; a merge whose parts or result are not in the
 *                    vocab is ZT_ERR_FORMAT.
 *   added_tokens    [{"id", "content", "lstrip":false, "rstrip":false,
 *                    "single_word":false, "normalized":false, "special"}...]
 *   normalizer      {"type":"NFC"} or null
 *   pre_tokenizer   Sequence[Split(Regex = the Qwen2 pattern below, Isolated,
 *                    invert false), ByteLevel(add_prefix_space false, use_regex false)]
 *   post_processor  ByteLevel or null (adds no tokens); decoder, truncation and
 *                    padding are ignored (Z-Image passes its own truncation).
 *
 * Encoding (what the reference does, in order):
 *   0. Bytes that are not valid UTF-8 become U+FFFD, one per maximal invalid
 *      subsequence (Rust String::from_utf8_lossy, Python bytes.decode("utf-8",
 *      "replace")): the reference only ever sees Unicode strings.
 *   1. Added tokens are matched on the raw text, leftmost then longest; each match
 *      is its id, the text between matches forms segments.
 *   2. Each segment: NFC (Unicode 9.0 data, as unicode-normalization-alignments
 *      0.1.12), then split by the regex
 *        (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|
 *        ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 *      with Unicode 16.0 classes (Oniguruma 6.9.10); (?i) folds s to S and U+017F.
 *   3. Each piece: UTF-8 bytes, byte-level BPE (lowest merge rank first, leftmost
 *      first among equal ranks), ids in order.
 *
 * Thread safety: a loaded tokenizer is read-only; encode from any number of threads.
 */
#ifndef ZT_TOKENIZER_H
#define ZT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "common/zt_common.h"
#include "models/limits.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Z-Image's text encoder input: the first 512 ids of the formatted prompt. */
#define ZT_TOKENIZER_MAX_TOKENS 512
/* tokenizer.json is read whole: larger files are refused (Qwen3 ships 11 MB) */
#define ZT_TOKENIZER_MAX_FILE (64ull << 20)
/* Ids of the Qwen3 special tokens used by the chat template and padding. */
#define ZT_TOKEN_ENDOFTEXT 151643
#define ZT_TOKEN_IM_START 151644
#define ZT_TOKEN_IM_END 151645

typedef struct zt_tokenizer zt_tokenizer;

/* Load tokenizer.json from `path` (for a model folder: MODEL_DIR/tokenizer/tokenizer.json).
 * Errors: ZT_ERR_IO (cannot open/read), ZT_ERR_FORMAT (malformed JSON or
 * inconsistent vocab/merges), ZT_ERR_UNSUPPORTED (valid but outside the subset
 * above), ZT_ERR_NOMEM; the message starts with `path`. */
int zt_tokenizer_load(const char *path, zt_tokenizer **tok, zt_err *e);
/* Same from bytes in memory; `name` prefixes error messages. */
int zt_tokenizer_load_mem(const char *json, size_t len, const char *name, zt_tokenizer **tok,
                          zt_err *e);
void zt_tokenizer_free(zt_tokenizer *tok);

/* Encode `len` bytes of `text` (any bytes; see step 0). Writes the first min(N, cap)
 * of the N ids of the full encoding to ids[] and stores that count in *n: cap is
 * the reference's truncation to max_length. Work stops once cap ids exist, so a huge
 * text truncated to a few ids costs little. *truncated (may be NULL) is set to 1
 * when N > cap. Errors: ZT_ERR_NOMEM only. */
int zt_tokenizer_encode(const zt_tokenizer *tok, const char *text, size_t len, int32_t *ids,
                        size_t cap, size_t *n, int *truncated, zt_err *e);
/* An upper bound of N for a text of `len` bytes (NFC and U+FFFD can expand the
 * text up to 3x, and every id covers at least one byte). */
size_t zt_tokenizer_max_ids(size_t len);

/* The Qwen3 chat template for one user message, add_generation_prompt, thinking
 * enabled (spec §5.1): "<|im_start|>user\n" + prompt + "<|im_end|>\n<|im_start|>assistant\n".
 * *str is malloc'ed (NUL-terminated, the caller frees it), *slen its length. */
int zt_tokenizer_chat_format(const char *prompt, size_t len, char **str, size_t *slen,
                             zt_err *e);
/* Encode the chat-formatted prompt and keep its first min(max_tokens, cap) ids
 * (max_tokens 0 = no limit but cap): Z-Image uses ZT_MAX_TOKENS (models/limits.h). */
int zt_tokenizer_encode_chat(const zt_tokenizer *tok, const char *prompt, size_t len,
                             size_t max_tokens, int32_t *ids, size_t cap, size_t *n,
                             int *truncated, zt_err *e);

/* Number of ids (model vocab and added tokens): ids are in [0, n_ids). */
int32_t zt_tokenizer_n_ids(const zt_tokenizer *tok);
/* Bytes of one token (NULL and *len 0 for an unused id); not NUL-terminated. */
const char *zt_tokenizer_token(const zt_tokenizer *tok, int32_t id, size_t *len);

/* ---- internal: Unicode data and NFC (api/tokenizer_unicode.c, generated, and
 * api/tokenizer_nfc.c); exposed for the tests. ---- */
enum { ZT_UC_L = 1, ZT_UC_N = 2, ZT_UC_WS = 4, ZT_UC_NFC = 8 };
/* Class bits of a code point (Unicode 16.0 L/N/White_Space; ZT_UC_NFC: the code point
 * is not an NFC boundary in Unicode 9.0 and needs the full normalization path). */
unsigned zt_tok_uclass(uint32_t cp);
unsigned zt_tok_ccc(uint32_t cp);                        /* Unicode 9.0 */
const uint32_t *zt_tok_decomp(uint32_t cp, unsigned *n); /* full canonical, no Hangul */
uint32_t zt_tok_compose(uint32_t a, uint32_t b);         /* 0 when none; no Hangul */

/* Growable scratch for the NFC slow path (zero-initialise; free with zt_tok_nfc_scratch_free). */
typedef struct {
    uint32_t *cp;
    size_t cap;
} zt_tok_nfc_scratch;
/* NFC of valid UTF-8 in[0, len) into out (capacity >= 3 * len + 4). Returns the number of
 * bytes written, or -1 when the scratch cannot grow. */
long zt_tok_nfc(const uint8_t *in, size_t len, uint8_t *out, zt_tok_nfc_scratch *s);
void zt_tok_nfc_scratch_free(zt_tok_nfc_scratch *s);

#ifdef __cplusplus
}
#endif
#endif
