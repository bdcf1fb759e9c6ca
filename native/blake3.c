/* BLAKE3, following the specification (Aumasson, Neves, O'Connor,
 * Wilcox-O'Hearn, 2020): 1 KiB chunks of 64-byte blocks, each chunk chained
 * into a chaining value (CV), CVs combined pairwise into a binary tree whose
 * left subtrees are complete, the root compressed with the ROOT flag.
 *
 * Where the time goes: a 256 KiB data chunk is 256 BLAKE3 chunks. Whole
 * power-of-two subtrees are hashed "wide": all their chunk CVs with a kernel
 * that runs 16 (AVX-512) or 8 (AVX2) compressions side by side, then each
 * level of parent nodes the same way. Only the last chunk of an input and the
 * merges of a streaming hasher's stack use the one-at-a-time compression. */
#include "blake3.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

enum { CHUNK_START = 1, CHUNK_END = 2, PARENT = 4, ROOT = 8 };

static const uint32_t IV[8] = {0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19};

/* Round r reads message word SCHED[r][i] where round 0 reads word i: the
 * specification's permutation applied r times. */
static const uint8_t SCHED[7][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8},
    {3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1},
    {10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6},
    {12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4},
    {9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7},
    {11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13},
};

static inline uint32_t load32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void store32(uint8_t *p, uint32_t w) {
  p[0] = (uint8_t)w;
  p[1] = (uint8_t)(w >> 8);
  p[2] = (uint8_t)(w >> 16);
  p[3] = (uint8_t)(w >> 24);
}

static inline uint32_t rotr32(uint32_t w, int c) { return (w >> c) | (w << (32 - c)); }

#define G(a, b, c, d, x, y)                                                                                                      \
  do {                                                                                                                           \
    a = a + b + (x);                                                                                                             \
    d = rotr32(d ^ a, 16);                                                                                                       \
    c = c + d;                                                                                                                   \
    b = rotr32(b ^ c, 12);                                                                                                       \
    a = a + b + (y);                                                                                                             \
    d = rotr32(d ^ a, 8);                                                                                                        \
    c = c + d;                                                                                                                   \
    b = rotr32(b ^ c, 7);                                                                                                        \
  } while (0)

/* compress runs the compression function; out receives the 8 words of the
 * new chaining value (the first half of the full output). */
static void compress(const uint32_t cv[8], const uint8_t block[B3_BLOCK_LEN], uint32_t block_len, uint64_t counter, uint32_t flags,
                     uint32_t out[8]) {
  uint32_t m[16];
  for (int i = 0; i < 16; i++) m[i] = load32(block + 4 * i);
  uint32_t v0 = cv[0], v1 = cv[1], v2 = cv[2], v3 = cv[3], v4 = cv[4], v5 = cv[5], v6 = cv[6], v7 = cv[7];
  uint32_t v8 = IV[0], v9 = IV[1], v10 = IV[2], v11 = IV[3];
  uint32_t v12 = (uint32_t)counter, v13 = (uint32_t)(counter >> 32), v14 = block_len, v15 = flags;
  for (int r = 0; r < 7; r++) {
    const uint8_t *s = SCHED[r];
    G(v0, v4, v8, v12, m[s[0]], m[s[1]]);
    G(v1, v5, v9, v13, m[s[2]], m[s[3]]);
    G(v2, v6, v10, v14, m[s[4]], m[s[5]]);
    G(v3, v7, v11, v15, m[s[6]], m[s[7]]);
    G(v0, v5, v10, v15, m[s[8]], m[s[9]]);
    G(v1, v6, v11, v12, m[s[10]], m[s[11]]);
    G(v2, v7, v8, v13, m[s[12]], m[s[13]]);
    G(v3, v4, v9, v14, m[s[14]], m[s[15]]);
  }
  out[0] = v0 ^ v8, out[1] = v1 ^ v9, out[2] = v2 ^ v10, out[3] = v3 ^ v11;
  out[4] = v4 ^ v12, out[5] = v5 ^ v13, out[6] = v6 ^ v14, out[7] = v7 ^ v15;
}

static void words_to_bytes(const uint32_t w[8], uint8_t out[32]) {
  for (int i = 0; i < 8; i++) store32(out + 4 * i, w[i]);
}

/* ---- many inputs at once ----------------------------------------------------
 * hash_many compresses n inputs, input i at base + i * stride, each `blocks`
 * blocks long, into one CV each (out + 32 i). Input i uses counter
 * counter + i when inc is set, else counter; its first block gets
 * flags | flags_start, its last flags | flags_end. */
typedef void (*hash_many_fn)(const uint8_t *base, size_t stride, size_t n, size_t blocks, uint64_t counter, int inc, uint32_t flags,
                             uint32_t flags_start, uint32_t flags_end, uint8_t *out);

static void hash_many_portable(const uint8_t *base, size_t stride, size_t n, size_t blocks, uint64_t counter, int inc, uint32_t flags,
                               uint32_t flags_start, uint32_t flags_end, uint8_t *out) {
  for (size_t i = 0; i < n; i++) {
    uint32_t cv[8];
    memcpy(cv, IV, sizeof cv);
    const uint8_t *p = base + i * stride;
    for (size_t b = 0; b < blocks; b++) {
      uint32_t f = flags | (b == 0 ? flags_start : 0) | (b + 1 == blocks ? flags_end : 0);
      compress(cv, p + b * B3_BLOCK_LEN, B3_BLOCK_LEN, counter + (inc ? i : 0), f, cv);
    }
    words_to_bytes(cv, out + 32 * i);
  }
}

#if defined(__x86_64__)

/* The wide kernels: one vector lane per input. Written once with GCC's vector
 * types and instantiated for 8 and 16 lanes; message words are gathered from
 * the inputs' blocks (all inputs sit at a fixed stride). Lanes past n reread
 * input 0 and are discarded. */
#define WIDE_KERNEL(NAME, LANES, TARGET, GATHER)                                                                                 \
  typedef uint32_t NAME##_v __attribute__((vector_size(4 * LANES)));                                                             \
  __attribute__((target(TARGET))) static inline NAME##_v NAME##_rot(NAME##_v x, int c) { return (x >> c) | (x << (32 - c)); }     \
  __attribute__((target(TARGET))) static void NAME(const uint8_t *base, size_t stride, size_t n, size_t blocks, uint64_t counter,   \
                                                   int inc, uint32_t flags, uint32_t flags_start, uint32_t flags_end,            \
                                                   uint8_t *out) {                                                               \
    int32_t offs[LANES];                                                                                                         \
    uint32_t lo[LANES], hi[LANES];                                                                                               \
    for (int i = 0; i < LANES; i++) {                                                                                            \
      size_t k = (size_t)i < n ? (size_t)i : 0;                                                                                  \
      offs[i] = (int32_t)(k * stride);                                                                                           \
      uint64_t c = counter + (inc ? k : 0);                                                                                      \
      lo[i] = (uint32_t)c;                                                                                                       \
      hi[i] = (uint32_t)(c >> 32);                                                                                               \
    }                                                                                                                            \
    NAME##_v idx, ctr_lo, ctr_hi, h[8];                                                                                          \
    memcpy(&idx, offs, sizeof idx);                                                                                              \
    memcpy(&ctr_lo, lo, sizeof ctr_lo);                                                                                          \
    memcpy(&ctr_hi, hi, sizeof ctr_hi);                                                                                          \
    for (int i = 0; i < 8; i++) h[i] = (NAME##_v){0} + IV[i];                                                                    \
    for (size_t b = 0; b < blocks; b++) {                                                                                        \
      const uint8_t *blk = base + b * B3_BLOCK_LEN;                                                                              \
      NAME##_v m[16];                                                                                                            \
      for (int w = 0; w < 16; w++) m[w] = GATHER(idx + (uint32_t)(4 * w), blk);                                                  \
      uint32_t f = flags | (b == 0 ? flags_start : 0) | (b + 1 == blocks ? flags_end : 0);                                       \
      NAME##_v v0 = h[0], v1 = h[1], v2 = h[2], v3 = h[3], v4 = h[4], v5 = h[5], v6 = h[6], v7 = h[7];                           \
      NAME##_v v8 = (NAME##_v){0} + IV[0], v9 = (NAME##_v){0} + IV[1], v10 = (NAME##_v){0} + IV[2], v11 = (NAME##_v){0} + IV[3]; \
      NAME##_v v12 = ctr_lo, v13 = ctr_hi, v14 = (NAME##_v){0} + (uint32_t)B3_BLOCK_LEN, v15 = (NAME##_v){0} + f;               \
      for (int r = 0; r < 7; r++) {                                                                                              \
        const uint8_t *s = SCHED[r];                                                                                             \
        NAME##_G(v0, v4, v8, v12, m[s[0]], m[s[1]]);                                                                             \
        NAME##_G(v1, v5, v9, v13, m[s[2]], m[s[3]]);                                                                             \
        NAME##_G(v2, v6, v10, v14, m[s[4]], m[s[5]]);                                                                            \
        NAME##_G(v3, v7, v11, v15, m[s[6]], m[s[7]]);                                                                            \
        NAME##_G(v0, v5, v10, v15, m[s[8]], m[s[9]]);                                                                            \
        NAME##_G(v1, v6, v11, v12, m[s[10]], m[s[11]]);                                                                          \
        NAME##_G(v2, v7, v8, v13, m[s[12]], m[s[13]]);                                                                           \
        NAME##_G(v3, v4, v9, v14, m[s[14]], m[s[15]]);                                                                           \
      }                                                                                                                          \
      h[0] = v0 ^ v8, h[1] = v1 ^ v9, h[2] = v2 ^ v10, h[3] = v3 ^ v11;                                                          \
      h[4] = v4 ^ v12, h[5] = v5 ^ v13, h[6] = v6 ^ v14, h[7] = v7 ^ v15;                                                        \
    }                                                                                                                            \
    uint32_t words[8][LANES];                                                                                                    \
    memcpy(words, h, sizeof words);                                                                                              \
    for (size_t i = 0; i < n && i < LANES; i++)                                                                                  \
      for (int w = 0; w < 8; w++) store32(out + 32 * i + 4 * w, words[w][i]);                                                    \
  }

#define WIDE_G(NAME, a, b, c, d, x, y)                                                                                           \
  do {                                                                                                                           \
    a = a + b + (x);                                                                                                             \
    d = NAME##_rot(d ^ a, 16);                                                                                                   \
    c = c + d;                                                                                                                   \
    b = NAME##_rot(b ^ c, 12);                                                                                                   \
    a = a + b + (y);                                                                                                             \
    d = NAME##_rot(d ^ a, 8);                                                                                                    \
    c = c + d;                                                                                                                   \
    b = NAME##_rot(b ^ c, 7);                                                                                                    \
  } while (0)

#define hash16_G(...) WIDE_G(hash16, __VA_ARGS__)
#define hash8_G(...) WIDE_G(hash8, __VA_ARGS__)
#define GATHER16(idx, p) ((hash16_v)_mm512_i32gather_epi32((__m512i)(idx), (const void *)(p), 1))
#define GATHER8(idx, p) ((hash8_v)_mm256_i32gather_epi32((const int *)(p), (__m256i)(idx), 1))

WIDE_KERNEL(hash16, 16, "avx512f", GATHER16)
WIDE_KERNEL(hash8, 8, "avx2", GATHER8)

#endif

static hash_many_fn hash_many_impl = hash_many_portable;
static size_t simd_lanes = 1;

/* hash_many splits n inputs into batches of the kernel's width. */
static void hash_many(const uint8_t *base, size_t stride, size_t n, size_t blocks, uint64_t counter, int inc, uint32_t flags,
                      uint32_t flags_start, uint32_t flags_end, uint8_t *out) {
  size_t step = simd_lanes;
  for (size_t i = 0; i < n; i += step) {
    size_t k = n - i < step ? n - i : step;
    hash_many_impl(base + i * stride, stride, k, blocks, counter + (inc ? i : 0), inc, flags, flags_start, flags_end, out + 32 * i);
  }
}

/* ---- chunks, parents, the stack ---------------------------------------------- */

static void chunk_init(b3_chunk *c, uint64_t counter) {
  memcpy(c->cv, IV, sizeof c->cv);
  c->counter = counter;
  c->buf_len = 0;
  c->blocks = 0;
}

static size_t chunk_len(const b3_chunk *c) { return (size_t)c->blocks * B3_BLOCK_LEN + c->buf_len; }

static uint32_t chunk_start_flag(const b3_chunk *c) { return c->blocks == 0 ? CHUNK_START : 0; }

/* chunk_update adds bytes to a chunk; the caller keeps the chunk within 1 KiB.
 * A full block is compressed only when more bytes follow it, because the
 * chunk's last block is compressed with CHUNK_END. */
static void chunk_update(b3_chunk *c, const uint8_t *p, size_t n) {
  if (c->buf_len > 0) {
    size_t room = (size_t)B3_BLOCK_LEN - c->buf_len;
    size_t take = room < n ? room : n;
    memcpy(c->buf + c->buf_len, p, take);
    c->buf_len = (uint8_t)(c->buf_len + take);
    p += take;
    n -= take;
    if (n == 0) return;
    compress(c->cv, c->buf, B3_BLOCK_LEN, c->counter, chunk_start_flag(c), c->cv);
    c->blocks++;
    c->buf_len = 0;
  }
  while (n > B3_BLOCK_LEN) {
    compress(c->cv, p, B3_BLOCK_LEN, c->counter, chunk_start_flag(c), c->cv);
    c->blocks++;
    p += B3_BLOCK_LEN;
    n -= B3_BLOCK_LEN;
  }
  memcpy(c->buf, p, n);
  c->buf_len = (uint8_t)n;
}

/* A node not compressed yet: a chunk's last block or a parent. */
typedef struct {
  uint32_t cv[8];
  uint8_t block[B3_BLOCK_LEN];
  uint32_t block_len;
  uint64_t counter;
  uint32_t flags;
} node_out;

static node_out chunk_output(const b3_chunk *c) {
  node_out o;
  memcpy(o.cv, c->cv, sizeof o.cv);
  memset(o.block, 0, sizeof o.block);
  memcpy(o.block, c->buf, c->buf_len);
  o.block_len = c->buf_len;
  o.counter = c->counter;
  o.flags = chunk_start_flag(c) | CHUNK_END;
  return o;
}

static node_out parent_output(const uint8_t left[32], const uint8_t right[32]) {
  node_out o;
  memcpy(o.cv, IV, sizeof o.cv);
  memcpy(o.block, left, 32);
  memcpy(o.block + 32, right, 32);
  o.block_len = B3_BLOCK_LEN;
  o.counter = 0;
  o.flags = PARENT;
  return o;
}

static void output_cv(const node_out *o, uint8_t out[32]) {
  uint32_t w[8];
  compress(o->cv, o->block, o->block_len, o->counter, o->flags, w);
  words_to_bytes(w, out);
}

static void output_root(const node_out *o, uint8_t out[32]) {
  uint32_t w[8];
  compress(o->cv, o->block, o->block_len, 0, o->flags | ROOT, w);
  words_to_bytes(w, out);
}

/* The largest power of two not above x (x > 0). */
static uint64_t pow2_floor(uint64_t x) { return 1ULL << (63 - __builtin_clzll(x)); }

/* Subtrees hashed wide are capped at this many chunks (the CV buffer lives
 * on the stack: 32 bytes per chunk). */
#define SUBTREE_MAX_CHUNKS 512

/* subtree_children hashes `chunks` whole chunks (a power of two, at least 2,
 * the first numbered `counter`) and writes the CVs of the subtree root's two
 * children to out (64 bytes). */
static void subtree_children(const uint8_t *p, size_t chunks, uint64_t counter, uint8_t out[64]) {
  uint8_t cvs[SUBTREE_MAX_CHUNKS * 32];
  hash_many(p, B3_CHUNK_LEN, chunks, B3_CHUNK_LEN / B3_BLOCK_LEN, counter, 1, 0, CHUNK_START, CHUNK_END, cvs);
  /* Each level's parents are the previous level's CVs read in pairs; they
   * are written over the front of the same buffer, behind the reads. */
  for (size_t n = chunks; n > 2; n /= 2) hash_many(cvs, B3_BLOCK_LEN, n / 2, 1, 0, 0, PARENT, 0, 0, cvs);
  memcpy(out, cvs, 64);
}

/* merge folds the stack down to one entry per set bit of `total` chunks:
 * the subtrees below the current chunk that are complete. */
static void merge(b3_hasher *h, uint64_t total) {
  size_t keep = (size_t)__builtin_popcountll(total);
  while (h->stack_len > keep) {
    node_out o = parent_output(h->stack[h->stack_len - 2], h->stack[h->stack_len - 1]);
    output_cv(&o, h->stack[h->stack_len - 2]);
    h->stack_len--;
  }
}

static void push_cv(b3_hasher *h, const uint8_t cv[32], uint64_t counter) {
  merge(h, counter);
  memcpy(h->stack[h->stack_len++], cv, 32);
}

void b3_init(b3_hasher *h) {
  memset(h, 0, sizeof *h);
  chunk_init(&h->chunk, 0);
}

void b3_update(b3_hasher *h, const uint8_t *p, size_t n) {
  if (n == 0) return;
  /* First complete the chunk already begun; it is final only when more bytes follow. */
  if (chunk_len(&h->chunk) > 0) {
    size_t room = B3_CHUNK_LEN - chunk_len(&h->chunk);
    size_t take = room < n ? room : n;
    chunk_update(&h->chunk, p, take);
    p += take;
    n -= take;
    if (n == 0) return;
    node_out o = chunk_output(&h->chunk);
    uint8_t cv[32];
    output_cv(&o, cv);
    push_cv(h, cv, h->chunk.counter);
    chunk_init(&h->chunk, h->chunk.counter + 1);
  }
  /* Then whole subtrees, as large as the input and their alignment allow,
   * always leaving at least one byte for the chunk state (it may be the last). */
  while (n > B3_CHUNK_LEN) {
    uint64_t chunks = pow2_floor((uint64_t)(n / B3_CHUNK_LEN));
    if (chunks * B3_CHUNK_LEN == n) chunks /= 2; /* keep the last chunk back */
    if (chunks > SUBTREE_MAX_CHUNKS) chunks = SUBTREE_MAX_CHUNKS;
    uint64_t counter = h->chunk.counter;
    while (counter & (chunks - 1)) chunks /= 2; /* a subtree starts at a multiple of its size */
    if (chunks == 1) {
      uint8_t cv[32];
      hash_many_portable(p, B3_CHUNK_LEN, 1, B3_CHUNK_LEN / B3_BLOCK_LEN, counter, 1, 0, CHUNK_START, CHUNK_END, cv);
      push_cv(h, cv, counter);
    } else {
      uint8_t pair[64];
      subtree_children(p, (size_t)chunks, counter, pair);
      push_cv(h, pair, counter);
      push_cv(h, pair + 32, counter + chunks / 2);
    }
    h->chunk.counter += chunks;
    p += chunks * B3_CHUNK_LEN;
    n -= chunks * B3_CHUNK_LEN;
  }
  chunk_update(&h->chunk, p, n);
  merge(h, h->chunk.counter);
}

void b3_final(const b3_hasher *h, uint8_t out[32]) {
  node_out o = chunk_output(&h->chunk);
  /* The chunk state is never empty after input (update keeps a byte back),
   * and is the whole input when the stack is empty. */
  for (size_t i = h->stack_len; i > 0; i--) {
    uint8_t cv[32];
    output_cv(&o, cv);
    o = parent_output(h->stack[i - 1], cv);
  }
  output_root(&o, out);
}

void b3_hash(const uint8_t *data, size_t len, uint8_t out[32]) {
  b3_hasher h;
  b3_init(&h);
  b3_update(&h, data, len);
  b3_final(&h, out);
}

/* agrees tells whether the current kernel gives the portable kernel's
 * digests for inputs that exercise every path (lengths around block, chunk
 * and subtree sizes, streamed in uneven pieces). */
static int agrees(void) {
  static uint8_t buf[40 * 1024 + 7];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)(i % 251);
  static const size_t lens[] = {0, 1, 63, 64, 65, 1023, 1024, 1025, 2048, 2049, 3072, 8191, 16384, 17409, 32768, 40 * 1024 + 7};
  hash_many_fn saved = hash_many_impl;
  size_t saved_lanes = simd_lanes;
  for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
    uint8_t a[32], b[32];
    hash_many_impl = hash_many_portable;
    simd_lanes = 1;
    b3_hash(buf, lens[k], a);
    hash_many_impl = saved;
    simd_lanes = saved_lanes;
    b3_hasher h;
    b3_init(&h);
    for (size_t at = 0; at < lens[k];) {
      size_t piece = 1 + (at * 7919) % 5000;
      if (piece > lens[k] - at) piece = lens[k] - at;
      b3_update(&h, buf + at, piece);
      at += piece;
    }
    b3_final(&h, b);
    if (memcmp(a, b, 32) != 0) return 0;
  }
  return 1;
}

const char *b3_select(const char *limit) {
  int allow512 = !limit || !*limit || strcmp(limit, "avx512") == 0;
  int allow2 = allow512 || strcmp(limit, "avx2") == 0;
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (allow512 && __builtin_cpu_supports("avx512f")) {
    hash_many_impl = hash16;
    simd_lanes = 16;
    if (agrees()) return "avx512";
  }
  if (allow2 && __builtin_cpu_supports("avx2")) {
    hash_many_impl = hash8;
    simd_lanes = 8;
    if (agrees()) return "avx2";
  }
#else
  (void)allow2;
#endif
  hash_many_impl = hash_many_portable;
  simd_lanes = 1;
  return "portable";
}
