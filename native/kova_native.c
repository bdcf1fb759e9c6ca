/*
 * kova_native: the few system calls and the one hot loop that Node.js does
 * not give us.
 *
 *   chunkHash(data, gear, …, state)            content-defined chunk boundaries
 *                                              and each chunk's SHA-256, in one
 *                                              pass, streaming across buffers
 *   sha256Each(buffers, callback)              SHA-256 of many buffers, on the
 *                                              libuv thread pool (async)
 *   sha256(data)                               one SHA-256, synchronously
 *   readDirStats(dirFd, callback)              a directory's names and lstat of
 *                                              each, in one thread-pool job
 *   seekData(fd, off) / seekHole(fd, off)      sparse-file extents (lseek)
 *   mknod(path, mode, major, minor)            FIFOs and device nodes
 *   listXattrs / getXattr / setXattr           extended attributes, never
 *                                              following a symlink
 *   renameExchange(a, b)                       atomic swap of two paths
 *   setTimes(pathOrFd, aSec, aNsec, mSec, mNsec) exact (nanosecond) times,
 *                                              never following a symlink
 *   syncfs(fd, callback)                       flush one filesystem (async)
 *
 * Paths are Buffers (or strings) so names that are not valid UTF-8 survive.
 * Every failure throws an Error with `code` set to the errno name (EEXIST…),
 * like node:fs does, so callers handle both the same way.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>
#include <dirent.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

#define PATH_BUF 4096

static const char *errno_code(int e) {
  switch (e) {
  case EPERM: return "EPERM";
  case ENOENT: return "ENOENT";
  case EIO: return "EIO";
  case EBADF: return "EBADF";
  case EACCES: return "EACCES";
  case EEXIST: return "EEXIST";
  case ENOTDIR: return "ENOTDIR";
  case EISDIR: return "EISDIR";
  case EINVAL: return "EINVAL";
  case ENOSPC: return "ENOSPC";
  case EROFS: return "EROFS";
  case ENAMETOOLONG: return "ENAMETOOLONG";
  case ELOOP: return "ELOOP";
  case ENOTSUP: return "ENOTSUP";
  case ENODATA: return "ENODATA";
  case ERANGE: return "ERANGE";
  case ENXIO: return "ENXIO";
  case EXDEV: return "EXDEV";
  case ENOSYS: return "ENOSYS";
  case E2BIG: return "E2BIG";
  case EDQUOT: return "EDQUOT";
  default: return "EUNKNOWN";
  }
}

/* errno_error builds an Error like node:fs's: message "CODE: text, syscall",
 * with code, errno and syscall set. */
static napi_value errno_error(napi_env env, int e, const char *syscall) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s, %s", errno_code(e), strerror(e), syscall);
  napi_value message, code, err, errnum, sc;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  napi_create_string_utf8(env, errno_code(e), NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, NULL, message, &err);
  napi_set_named_property(env, err, "code", code);
  napi_create_int32(env, -e, &errnum);
  napi_set_named_property(env, err, "errno", errnum);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sc);
  napi_set_named_property(env, err, "syscall", sc);
  return err;
}

static napi_value throw_errno(napi_env env, int e, const char *syscall) {
  napi_throw(env, errno_error(env, e, syscall));
  return NULL;
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

/* Copies a Buffer/Uint8Array or string argument into a NUL-terminated path.
 * Rejects embedded NULs: a path containing one would silently be cut short. */
static int get_path(napi_env env, napi_value v, char *out, size_t cap) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t == napi_string) {
    size_t len;
    if (napi_get_value_string_utf8(env, v, out, cap, &len) != napi_ok) return -1;
    if (len + 1 >= cap) return -1;
    if (strlen(out) != len) return -1;
    return 0;
  }
  bool is_ta = false;
  napi_is_typedarray(env, v, &is_ta);
  bool is_buf = false;
  napi_is_buffer(env, v, &is_buf);
  void *data = NULL;
  size_t len = 0;
  if (is_buf) {
    napi_get_buffer_info(env, v, &data, &len);
  } else if (is_ta) {
    napi_typedarray_type tt;
    napi_value ab;
    size_t off;
    napi_get_typedarray_info(env, v, &tt, &len, &data, &ab, &off);
    if (tt != napi_uint8_array) return -1;
  } else {
    return -1;
  }
  if (len + 1 > cap) return -1;
  if (memchr(data, 0, len) != NULL) return -1;
  memcpy(out, data, len);
  out[len] = 0;
  return 0;
}

static int get_bytes(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  bool is_buf = false;
  napi_is_buffer(env, v, &is_buf);
  if (is_buf) {
    return napi_get_buffer_info(env, v, (void **)data, len) == napi_ok ? 0 : -1;
  }
  bool is_ta = false;
  napi_is_typedarray(env, v, &is_ta);
  if (!is_ta) return -1;
  napi_typedarray_type tt;
  napi_value ab;
  size_t off;
  napi_get_typedarray_info(env, v, &tt, len, (void **)data, &ab, &off);
  return tt == napi_uint8_array ? 0 : -1;
}

static int64_t get_i64(napi_env env, napi_value v) {
  int64_t r = 0;
  napi_get_value_int64(env, v, &r);
  return r;
}

/* ---- content-defined chunking (FastCDC with normalised chunking) --------
 *
 * h is a 32-bit gear hash: h = (h << 1) + gear[byte]. Bit k of h depends on
 * the last k+1 bytes only, so the masks test the top bits, which see a
 * 32-byte window. Up to `avg` the stricter mask (more bits) applies, after it
 * the looser one: chunk sizes cluster around `avg` (FastCDC's "normalised
 * chunking"). The first `min` bytes of a chunk are skipped without hashing.
 * The JavaScript reference in src/engine/chunker/gear-chunker.ts must cut at
 * exactly the same places; a test holds the two together. */

/* ---- SHA-256 ----------------------------------------------------------------
 * Our own, so a chunk can be hashed right after it is scanned, while its
 * bytes are still in the CPU cache (hashing the same bytes again from memory
 * is what made the hash the costliest step), and so a hash can be carried
 * across buffers. The compression function uses the CPU's SHA extensions
 * (SHA-NI) when present, else portable C; at load the two are compared and
 * SHA-NI is used only if they agree. */

static const uint32_t SHA256_K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

/* Compresses `blocks` 64-byte blocks into state (a..h), in portable C. */
static void sha256_blocks_c(uint32_t st[8], const uint8_t *p, size_t blocks) {
  for (; blocks > 0; blocks--, p += 64) {
    uint32_t w[64];
    for (int t = 0; t < 16; t++) w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 | (uint32_t)p[4 * t + 2] << 8 | p[4 * t + 3];
    for (int t = 16; t < 64; t++) {
      uint32_t s0 = ROTR(w[t - 15], 7) ^ ROTR(w[t - 15], 18) ^ (w[t - 15] >> 3);
      uint32_t s1 = ROTR(w[t - 2], 17) ^ ROTR(w[t - 2], 19) ^ (w[t - 2] >> 10);
      w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = st[0], b = st[1], c = st[2], d = st[3], e = st[4], f = st[5], g = st[6], h = st[7];
    for (int t = 0; t < 64; t++) {
      uint32_t t1 = h + (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25)) + ((e & f) ^ (~e & g)) + SHA256_K[t] + w[t];
      uint32_t t2 = (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    st[0] += a, st[1] += b, st[2] += c, st[3] += d, st[4] += e, st[5] += f, st[6] += g, st[7] += h;
  }
}

#if defined(__x86_64__)
#include <immintrin.h>

/* The same with SHA-NI. */
__attribute__((target("sha,sse4.1,ssse3"))) static void sha256_blocks_ni(uint32_t state[8], const uint8_t *data, size_t blocks) {
  const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  /* The instructions want the state as ABEF and CDGH. */
  __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[0]), 0xB1); /* CDAB */
  __m128i s1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[4]), 0x1B);  /* EFGH */
  __m128i s0 = _mm_alignr_epi8(tmp, s1, 8);                                          /* ABEF */
  s1 = _mm_blend_epi16(s1, tmp, 0xF0);                                                /* CDGH */
  for (; blocks > 0; blocks--, data += 64) {
    const __m128i save0 = s0, save1 = s1;
    __m128i w[4];
    for (int i = 0; i < 4; i++) w[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16 * i)), bswap);
    for (int g = 0; g < 16; g++) {
      /* Four rounds with message words 4g..4g+3. */
      __m128i msg = _mm_add_epi32(w[g & 3], _mm_loadu_si128((const __m128i *)&SHA256_K[4 * g]));
      s1 = _mm_sha256rnds2_epu32(s1, s0, msg);
      s0 = _mm_sha256rnds2_epu32(s0, s1, _mm_shuffle_epi32(msg, 0x0E));
      if (g < 12) {
        /* Words 4(g+4)..: W[t-16] + s0(W[t-15]) + W[t-7] + s1(W[t-2]). */
        __m128i next = _mm_sha256msg1_epu32(w[g & 3], w[(g + 1) & 3]);
        next = _mm_add_epi32(next, _mm_alignr_epi8(w[(g + 3) & 3], w[(g + 2) & 3], 4));
        w[g & 3] = _mm_sha256msg2_epu32(next, w[(g + 3) & 3]);
      }
    }
    s0 = _mm_add_epi32(s0, save0);
    s1 = _mm_add_epi32(s1, save1);
  }
  tmp = _mm_shuffle_epi32(s0, 0x1B);   /* FEBA */
  s1 = _mm_shuffle_epi32(s1, 0xB1);    /* DCHG */
  s0 = _mm_blend_epi16(tmp, s1, 0xF0); /* DCBA */
  s1 = _mm_alignr_epi8(s1, tmp, 8);    /* HGFE */
  _mm_storeu_si128((__m128i *)&state[0], s0);
  _mm_storeu_si128((__m128i *)&state[4], s1);
}
#endif

static void (*sha256_blocks)(uint32_t st[8], const uint8_t *p, size_t blocks) = sha256_blocks_c;

/* An incremental hash; plain bytes, so it can live in a JS-owned buffer. */
typedef struct {
  uint32_t h[8];
  uint64_t total;
  uint32_t buflen;
  uint8_t buf[64];
} sha_ctx;

static void sha_init(sha_ctx *c) {
  static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  memcpy(c->h, iv, sizeof iv);
  c->total = 0;
  c->buflen = 0;
}

static void sha_update(sha_ctx *c, const uint8_t *p, size_t n) {
  c->total += n;
  if (c->buflen > 0) {
    size_t take = 64 - c->buflen < n ? 64 - c->buflen : n;
    memcpy(c->buf + c->buflen, p, take);
    c->buflen += (uint32_t)take;
    p += take;
    n -= take;
    if (c->buflen < 64) return;
    sha256_blocks(c->h, c->buf, 1);
    c->buflen = 0;
  }
  if (n >= 64) {
    sha256_blocks(c->h, p, n / 64);
    p += n - n % 64;
    n %= 64;
  }
  memcpy(c->buf, p, n);
  c->buflen = (uint32_t)n;
}

static void sha_final(sha_ctx *c, uint8_t out[32]) {
  uint64_t bits = c->total * 8;
  uint8_t pad[72] = {0x80};
  size_t padlen = (c->buflen < 56 ? 56 : 120) - c->buflen;
  for (int i = 0; i < 8; i++) pad[padlen + i] = (uint8_t)(bits >> (56 - 8 * i));
  uint64_t total = c->total;
  sha_update(c, pad, padlen + 8);
  c->total = total;
  for (int i = 0; i < 8; i++) {
    out[4 * i] = (uint8_t)(c->h[i] >> 24);
    out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
    out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
    out[4 * i + 3] = (uint8_t)c->h[i];
  }
}

static void sha256(const uint8_t *data, size_t len, uint8_t out[32]) {
  sha_ctx c;
  sha_init(&c);
  sha_update(&c, data, len);
  sha_final(&c, out);
}

/* sha256_select switches to SHA-NI when the CPU has it and it agrees with the C code. */
static void sha256_select(void) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("sha") || !__builtin_cpu_supports("sse4.1") || !__builtin_cpu_supports("ssse3")) return;
  uint8_t buf[1000], a[32], b[32];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)(i * 131 + 7);
  for (size_t len = 0; len <= sizeof buf; len += 7) {
    sha256_blocks = sha256_blocks_c;
    sha256(buf, len, a);
    sha256_blocks = sha256_blocks_ni;
    sha256(buf, len, b);
    if (memcmp(a, b, 32) != 0) {
      sha256_blocks = sha256_blocks_c;
      return;
    }
  }
#endif
}

/* ---- chunking and hashing in one pass -------------------------------------
 * chunk_state carries, between buffers, the gear hash, the bytes of the
 * current chunk seen so far, and the SHA-256 of those bytes: so a chunk may
 * span buffers, and each chunk is hashed just after it is scanned, while its
 * bytes are still in the cache. */

typedef struct {
  const uint32_t *gear;
  size_t min, avg, max;
  uint32_t mask_s, mask_l;
} scan_params;

typedef struct {
  uint32_t h;
  uint32_t pos;
  sha_ctx sha;
} chunk_state;

/* scan_hash chunks one buffer: writes the end offsets of the chunks that end
 * in it to cuts (room for len / min + 2) and their digests to digests, and
 * returns how many. The bytes of the chunk still open are hashed into st. */
static size_t scan_hash(const uint8_t *data, size_t len, const scan_params *sp, chunk_state *st, uint32_t *cuts, uint8_t *digests) {
  uint32_t h = st->h;
  size_t pos = st->pos;
  size_t count = 0, i = 0, start = 0;
  while (i < len) {
    if (pos < sp->min) {
      size_t skip = sp->min - pos;
      if (skip > len - i) skip = len - i;
      i += skip;
      pos += skip;
      h = 0;
      continue;
    }
    /* Hash up to the next forced cut (max) or the end of data. */
    size_t stop = i + (sp->max - pos);
    if (stop > len) stop = len;
    int cut = 0;
    while (i < stop) {
      h = (h << 1) + sp->gear[data[i]];
      uint32_t mask = pos < sp->avg ? sp->mask_s : sp->mask_l;
      i++;
      pos++;
      if ((h & mask) == 0) { cut = 1; break; }
    }
    if (cut || pos == sp->max) {
      sha_update(&st->sha, data + start, i - start);
      sha_final(&st->sha, digests + 32 * count);
      sha_init(&st->sha);
      cuts[count++] = (uint32_t)i;
      start = i;
      pos = 0;
      h = 0;
    }
  }
  if (start < len) sha_update(&st->sha, data + start, len - start);
  st->h = h;
  st->pos = (uint32_t)pos;
  return count;
}

typedef struct {
  napi_async_work work;
  napi_ref callback;
  napi_ref keep_data, keep_state;
  const uint8_t *data;
  size_t len;
  uint32_t gear[256];
  scan_params sp;
  chunk_state *state;
  uint32_t *cuts;
  uint8_t *digests;
  size_t count;
} scan_job;

static napi_value scan_result(napi_env env, const uint32_t *cuts, const uint8_t *digests, size_t count) {
  napi_value out, ab, cuts_arr, dig;
  void *p;
  napi_create_object(env, &out);
  napi_create_arraybuffer(env, count * sizeof(uint32_t), &p, &ab);
  if (count) memcpy(p, cuts, count * sizeof(uint32_t));
  napi_create_typedarray(env, napi_uint32_array, count, ab, 0, &cuts_arr);
  napi_create_buffer_copy(env, count * 32, count ? (const void *)digests : (const void *)"", &p, &dig);
  napi_set_named_property(env, out, "cuts", cuts_arr);
  napi_set_named_property(env, out, "digests", dig);
  return out;
}

static void scan_execute(napi_env env, void *data) {
  (void)env;
  scan_job *job = data;
  job->count = scan_hash(job->data, job->len, &job->sp, job->state, job->cuts, job->digests);
}

static void scan_complete(napi_env env, napi_status status, void *data) {
  scan_job *job = data;
  napi_value cb, global, args[2];
  napi_get_reference_value(env, job->callback, &cb);
  napi_get_global(env, &global);
  if (status != napi_ok) {
    napi_value message;
    napi_create_string_utf8(env, "chunkHash: cancelled", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &args[0]);
    napi_get_undefined(env, &args[1]);
  } else {
    napi_get_null(env, &args[0]);
    args[1] = scan_result(env, job->cuts, job->digests, job->count);
  }
  napi_call_function(env, global, cb, 2, args, NULL);
  napi_delete_reference(env, job->callback);
  napi_delete_reference(env, job->keep_data);
  napi_delete_reference(env, job->keep_state);
  napi_delete_async_work(env, job->work);
  free(job->cuts);
  free(job->digests);
  free(job);
}

static chunk_state *get_state(napi_env env, napi_value v) {
  uint8_t *p;
  size_t len;
  if (get_bytes(env, v, &p, &len) != 0 || len < sizeof(chunk_state) || ((uintptr_t)p % 8) != 0) return NULL;
  return (chunk_state *)p;
}

/* chunkStateSize() -> bytes of the state buffer chunkHash needs (allocate a
 * Uint8Array on an 8-byte boundary, e.g. new Uint8Array(new ArrayBuffer(n))). */
static napi_value chunk_state_size(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  napi_create_uint32(env, (uint32_t)sizeof(chunk_state), &out);
  return out;
}

/* chunkReset(state) starts a new stream. */
static napi_value chunk_reset(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  chunk_state *st = argc < 1 ? NULL : get_state(env, argv[0]);
  if (!st) return throw_type(env, "chunkReset: bad state buffer");
  st->h = 0;
  st->pos = 0;
  sha_init(&st->sha);
  return NULL;
}

/* chunkHash(data, gear, min, avg, max, maskS, maskL, state, callback?)
 * -> {cuts: Uint32Array, digests: Buffer}: the offsets in `data` where chunks
 * end and the SHA-256 of each (32 bytes each, in order; a chunk that began in
 * an earlier buffer is hashed whole). With a callback it runs on the thread
 * pool; `data` and `state` must not be touched until it is called. */
static napi_value chunk_hash(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 8) return throw_type(env, "chunkHash: 8 arguments expected");
  uint8_t *data;
  size_t len;
  if (get_bytes(env, argv[0], &data, &len) != 0) return throw_type(env, "chunkHash: data must be a Uint8Array");
  napi_typedarray_type tt;
  size_t n;
  void *gdata;
  napi_value ab;
  size_t off;
  bool is_ta = false;
  napi_is_typedarray(env, argv[1], &is_ta);
  if (!is_ta) return throw_type(env, "chunkHash: gear must be a Uint32Array");
  napi_get_typedarray_info(env, argv[1], &tt, &n, &gdata, &ab, &off);
  if (tt != napi_uint32_array || n != 256) return throw_type(env, "chunkHash: gear must be a Uint32Array(256)");
  chunk_state *st = get_state(env, argv[7]);
  if (!st) return throw_type(env, "chunkHash: bad state buffer");
  scan_params sp = {
      .gear = gdata,
      .min = (size_t)get_i64(env, argv[2]),
      .avg = (size_t)get_i64(env, argv[3]),
      .max = (size_t)get_i64(env, argv[4]),
      .mask_s = (uint32_t)get_i64(env, argv[5]),
      .mask_l = (uint32_t)get_i64(env, argv[6]),
  };
  if (!(sp.min > 0 && sp.min <= sp.avg && sp.avg <= sp.max && sp.max < 0xffffffffu))
    return throw_type(env, "chunkHash: need 0 < min <= avg <= max");
  size_t cap = len / sp.min + 2;
  uint32_t *cuts = malloc(cap * sizeof(uint32_t));
  uint8_t *digests = malloc(cap * 32);
  if (!cuts || !digests) {
    free(cuts);
    free(digests);
    return throw_errno(env, ENOMEM, "malloc");
  }
  napi_valuetype cbt = napi_undefined;
  if (argc >= 9) napi_typeof(env, argv[8], &cbt);
  if (cbt != napi_function) {
    size_t count = scan_hash(data, len, &sp, st, cuts, digests);
    napi_value out = scan_result(env, cuts, digests, count);
    free(cuts);
    free(digests);
    return out;
  }
  scan_job *job = calloc(1, sizeof *job);
  if (!job) {
    free(cuts);
    free(digests);
    return throw_errno(env, ENOMEM, "calloc");
  }
  memcpy(job->gear, gdata, sizeof job->gear);
  job->sp = sp;
  job->sp.gear = job->gear;
  job->data = data;
  job->len = len;
  job->state = st;
  job->cuts = cuts;
  job->digests = digests;
  napi_create_reference(env, argv[0], 1, &job->keep_data);
  napi_create_reference(env, argv[7], 1, &job->keep_state);
  napi_create_reference(env, argv[8], 1, &job->callback);
  napi_value name;
  napi_create_string_utf8(env, "kova.chunkHash", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, scan_execute, scan_complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return NULL;
}

/* chunkHashFinal(state) -> the digest of the chunk still open (the last one
 * of the stream), or null when no byte is pending; then resets the state. */
static napi_value chunk_hash_final(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  chunk_state *st = argc < 1 ? NULL : get_state(env, argv[0]);
  if (!st) return throw_type(env, "chunkHashFinal: bad state buffer");
  napi_value out;
  if (st->pos == 0) {
    napi_get_null(env, &out);
  } else {
    void *dst;
    napi_create_buffer(env, 32, &dst, &out);
    sha_final(&st->sha, dst);
  }
  st->h = 0;
  st->pos = 0;
  sha_init(&st->sha);
  return out;
}

/* ---- hashing on the thread pool ------------------------------------------- */

typedef struct {
  napi_async_work work;
  napi_ref callback;
  napi_ref keep; /* the array of buffers, kept alive while we read them */
  size_t count;
  const uint8_t **ptrs;
  size_t *lens;
  uint8_t *digests;
  int failed;
} sha_job;

static void sha_execute(napi_env env, void *data) {
  (void)env;
  sha_job *job = data;
  for (size_t i = 0; i < job->count; i++) sha256(job->ptrs[i], job->lens[i], job->digests + 32 * i);
}

static void sha_complete(napi_env env, napi_status status, void *data) {
  sha_job *job = data;
  napi_value cb, global, args[2];
  napi_get_reference_value(env, job->callback, &cb);
  napi_get_global(env, &global);
  if (status != napi_ok || job->failed) {
    napi_value message;
    napi_create_string_utf8(env, "sha256Each: hashing failed", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &args[0]);
    napi_get_undefined(env, &args[1]);
  } else {
    napi_get_null(env, &args[0]);
    void *dst;
    napi_create_buffer_copy(env, job->count * 32, job->digests, &dst, &args[1]);
  }
  napi_call_function(env, global, cb, 2, args, NULL);
  napi_delete_reference(env, job->callback);
  napi_delete_reference(env, job->keep);
  napi_delete_async_work(env, job->work);
  free(job->ptrs);
  free(job->lens);
  free(job->digests);
  free(job);
}

/* sha256Each(buffers: Uint8Array[], callback(err, digests: Buffer)) hashes
 * each buffer on a thread-pool thread; digests are 32 bytes each, in order.
 * The buffers must not be modified until the callback runs. */
static napi_value sha256_each(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool is_arr = false;
  if (argc < 2 || napi_is_array(env, argv[0], &is_arr) != napi_ok || !is_arr) return throw_type(env, "sha256Each: an array of buffers expected");
  uint32_t count;
  napi_get_array_length(env, argv[0], &count);
  sha_job *job = calloc(1, sizeof *job);
  if (!job) return throw_errno(env, ENOMEM, "calloc");
  job->count = count;
  job->ptrs = calloc(count ? count : 1, sizeof(uint8_t *));
  job->lens = calloc(count ? count : 1, sizeof(size_t));
  job->digests = malloc(count ? count * 32 : 1);
  if (!job->ptrs || !job->lens || !job->digests) {
    free(job->ptrs); free(job->lens); free(job->digests); free(job);
    return throw_errno(env, ENOMEM, "malloc");
  }
  for (uint32_t i = 0; i < count; i++) {
    napi_value el;
    napi_get_element(env, argv[0], i, &el);
    uint8_t *p;
    size_t l;
    if (get_bytes(env, el, &p, &l) != 0) {
      free(job->ptrs); free(job->lens); free(job->digests); free(job);
      return throw_type(env, "sha256Each: every element must be a Uint8Array");
    }
    job->ptrs[i] = p;
    job->lens[i] = l;
  }
  napi_create_reference(env, argv[0], 1, &job->keep);
  napi_create_reference(env, argv[1], 1, &job->callback);
  napi_value name;
  napi_create_string_utf8(env, "kova.sha256Each", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, sha_execute, sha_complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return NULL;
}

/* ---- directory listing with lstat, on the thread pool ---------------------- */

#define STAT_FIELDS 13

typedef struct {
  napi_async_work work;
  napi_ref callback;
  int dirfd;
  int err;
  size_t count, cap;
  char **names;
  size_t *name_lens;
  int64_t *stats;  /* STAT_FIELDS per entry */
  int32_t *errnos; /* 0, or the errno of a failed lstat (the entry vanished) */
} dir_job;

static void dir_free(dir_job *job) {
  for (size_t i = 0; i < job->count; i++) free(job->names[i]);
  free(job->names);
  free(job->name_lens);
  free(job->stats);
  free(job->errnos);
  free(job);
}

static int dir_grow(dir_job *job) {
  size_t cap = job->cap ? job->cap * 2 : 64;
  char **n = realloc(job->names, cap * sizeof(char *));
  if (!n) return -1;
  job->names = n;
  size_t *l = realloc(job->name_lens, cap * sizeof(size_t));
  if (!l) return -1;
  job->name_lens = l;
  int64_t *s = realloc(job->stats, cap * STAT_FIELDS * sizeof(int64_t));
  if (!s) return -1;
  job->stats = s;
  int32_t *e = realloc(job->errnos, cap * sizeof(int32_t));
  if (!e) return -1;
  job->errnos = e;
  job->cap = cap;
  return 0;
}

static void dir_execute(napi_env env, void *data) {
  (void)env;
  dir_job *job = data;
  /* A fresh open file description: our reading does not move the caller's offset. */
  int fd = openat(job->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) { job->err = errno; return; }
  DIR *d = fdopendir(fd);
  if (!d) { job->err = errno; close(fd); return; }
  struct dirent *e;
  errno = 0;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.' && (e->d_name[1] == 0 || (e->d_name[1] == '.' && e->d_name[2] == 0))) continue;
    if (job->count == job->cap && dir_grow(job) != 0) { job->err = ENOMEM; break; }
    size_t l = strlen(e->d_name);
    char *copy = malloc(l + 1);
    if (!copy) { job->err = ENOMEM; break; }
    memcpy(copy, e->d_name, l + 1);
    size_t i = job->count++;
    job->names[i] = copy;
    job->name_lens[i] = l;
    struct stat st;
    int64_t *f = job->stats + i * STAT_FIELDS;
    if (fstatat(dirfd(d), copy, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      job->errnos[i] = errno;
      memset(f, 0, STAT_FIELDS * sizeof(int64_t));
    } else {
      job->errnos[i] = 0;
      f[0] = st.st_mode;
      f[1] = st.st_uid;
      f[2] = st.st_gid;
      f[3] = st.st_size;
      f[4] = st.st_mtim.tv_sec;
      f[5] = st.st_mtim.tv_nsec;
      f[6] = st.st_ctim.tv_sec;
      f[7] = st.st_ctim.tv_nsec;
      f[8] = (int64_t)st.st_ino;
      f[9] = (int64_t)st.st_dev;
      f[10] = (int64_t)st.st_nlink;
      f[11] = (int64_t)st.st_rdev;
      f[12] = st.st_blocks;
    }
    errno = 0;
  }
  if (!job->err && errno) job->err = errno;
  closedir(d);
}

static void dir_complete(napi_env env, napi_status status, void *data) {
  dir_job *job = data;
  napi_value cb, global, args[2];
  napi_get_reference_value(env, job->callback, &cb);
  napi_get_global(env, &global);
  if (status != napi_ok || job->err) {
    args[0] = errno_error(env, job->err ? job->err : EIO, "readdir");
    napi_get_undefined(env, &args[1]);
  } else {
    napi_get_null(env, &args[0]);
    napi_value result, names, stats_ab, stats, errs_ab, errs;
    napi_create_object(env, &result);
    napi_create_array_with_length(env, job->count, &names);
    for (size_t i = 0; i < job->count; i++) {
      napi_value nb;
      void *dst;
      napi_create_buffer_copy(env, job->name_lens[i], job->names[i], &dst, &nb);
      napi_set_element(env, names, (uint32_t)i, nb);
    }
    void *sd, *ed;
    napi_create_arraybuffer(env, job->count * STAT_FIELDS * sizeof(int64_t), &sd, &stats_ab);
    if (job->count) memcpy(sd, job->stats, job->count * STAT_FIELDS * sizeof(int64_t));
    napi_create_typedarray(env, napi_bigint64_array, job->count * STAT_FIELDS, stats_ab, 0, &stats);
    napi_create_arraybuffer(env, job->count * sizeof(int32_t), &ed, &errs_ab);
    if (job->count) memcpy(ed, job->errnos, job->count * sizeof(int32_t));
    napi_create_typedarray(env, napi_int32_array, job->count, errs_ab, 0, &errs);
    napi_set_named_property(env, result, "names", names);
    napi_set_named_property(env, result, "stats", stats);
    napi_set_named_property(env, result, "errnos", errs);
    args[1] = result;
  }
  napi_call_function(env, global, cb, 2, args, NULL);
  napi_delete_reference(env, job->callback);
  napi_delete_async_work(env, job->work);
  dir_free(job);
}

/* readDirStats(dirFd, callback(err, {names, stats, errnos})) lists the open
 * directory and lstat()s every entry relative to it (fstatat with
 * AT_SYMLINK_NOFOLLOW), all in one thread-pool job. `stats` holds 13 int64
 * per entry: mode, uid, gid, size, mtime s, mtime ns, ctime s, ctime ns, ino,
 * dev, nlink, rdev, blocks. */
static napi_value read_dir_stats(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) return throw_type(env, "readDirStats: fd expected");
  dir_job *job = calloc(1, sizeof *job);
  if (!job) return throw_errno(env, ENOMEM, "calloc");
  job->dirfd = fd;
  napi_create_reference(env, argv[1], 1, &job->callback);
  napi_value name;
  napi_create_string_utf8(env, "kova.readDirStats", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, dir_execute, dir_complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return NULL;
}

/* ---- sparse files --------------------------------------------------------- */

static napi_value seek_whence(napi_env env, napi_callback_info info, int whence, const char *name) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) return throw_type(env, "fd expected");
  int64_t off = get_i64(env, argv[1]);
  off_t r = lseek(fd, (off_t)off, whence);
  napi_value out;
  if (r < 0) {
    /* ENXIO: no more data (or no hole before EOF) at or after off. */
    if (errno == ENXIO) { napi_create_int64(env, -1, &out); return out; }
    return throw_errno(env, errno, name);
  }
  napi_create_int64(env, (int64_t)r, &out);
  return out;
}

static napi_value seek_data(napi_env env, napi_callback_info info) {
  return seek_whence(env, info, SEEK_DATA, "lseek(SEEK_DATA)");
}

static napi_value seek_hole(napi_env env, napi_callback_info info) {
  return seek_whence(env, info, SEEK_HOLE, "lseek(SEEK_HOLE)");
}

/* ---- special files -------------------------------------------------------- */

static napi_value do_mknod(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char path[PATH_BUF];
  if (argc < 4 || get_path(env, argv[0], path, sizeof path) != 0) return throw_type(env, "mknod: bad path");
  mode_t mode = (mode_t)get_i64(env, argv[1]);
  unsigned maj = (unsigned)get_i64(env, argv[2]);
  unsigned min = (unsigned)get_i64(env, argv[3]);
  if (mknod(path, mode, makedev(maj, min)) != 0) return throw_errno(env, errno, "mknod");
  return NULL;
}

/* ---- extended attributes (never through a symlink) ------------------------
 * The first argument is either a path (the l* calls: a final symlink is acted
 * on, not followed) or an open file descriptor (the f* calls). */

static int get_fd_arg(napi_env env, napi_value v, int *fd) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t != napi_number) return 0;
  int32_t n;
  napi_get_value_int32(env, v, &n);
  *fd = n;
  return 1;
}

static napi_value list_xattrs(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char path[PATH_BUF];
  int fd = -1;
  if (argc < 1) return throw_type(env, "listXattrs: path or fd expected");
  int use_fd = get_fd_arg(env, argv[0], &fd);
  if (!use_fd && get_path(env, argv[0], path, sizeof path) != 0) return throw_type(env, "listXattrs: bad path");
  char stack[4096];
  char *buf = stack;
  ssize_t n = use_fd ? flistxattr(fd, buf, sizeof stack) : llistxattr(path, buf, sizeof stack);
  if (n < 0 && errno == ERANGE) {
    ssize_t need = use_fd ? flistxattr(fd, NULL, 0) : llistxattr(path, NULL, 0);
    if (need < 0) return throw_errno(env, errno, "llistxattr");
    buf = malloc((size_t)need + 1);
    if (!buf) return throw_errno(env, ENOMEM, "malloc");
    n = use_fd ? flistxattr(fd, buf, (size_t)need + 1) : llistxattr(path, buf, (size_t)need + 1);
  }
  napi_value arr;
  napi_create_array(env, &arr);
  if (n < 0) {
    int e = errno;
    if (buf != stack) free(buf);
    if (e == ENOTSUP) return arr;
    return throw_errno(env, e, "llistxattr");
  }
  uint32_t idx = 0;
  for (ssize_t i = 0; i < n;) {
    size_t l = strlen(buf + i);
    napi_value name;
    void *dst;
    napi_create_buffer_copy(env, l, buf + i, &dst, &name);
    napi_set_element(env, arr, idx++, name);
    i += (ssize_t)l + 1;
  }
  if (buf != stack) free(buf);
  return arr;
}

static napi_value get_xattr(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char path[PATH_BUF], name[256];
  int fd = -1;
  if (argc < 2) return throw_type(env, "getXattr: 2 arguments expected");
  int use_fd = get_fd_arg(env, argv[0], &fd);
  if (!use_fd && get_path(env, argv[0], path, sizeof path) != 0) return throw_type(env, "getXattr: bad path");
  if (get_path(env, argv[1], name, sizeof name) != 0) return throw_type(env, "getXattr: bad name");
#define GETX(b, l) (use_fd ? fgetxattr(fd, name, (b), (l)) : lgetxattr(path, name, (b), (l)))
  ssize_t need = GETX(NULL, 0);
  if (need < 0) return throw_errno(env, errno, "lgetxattr");
  for (int attempt = 0; attempt < 4; attempt++) {
    char *buf = malloc((size_t)need + 1);
    if (!buf) return throw_errno(env, ENOMEM, "malloc");
    ssize_t n = GETX(buf, (size_t)need + 1);
    if (n >= 0) {
      napi_value out;
      void *dst;
      napi_create_buffer_copy(env, (size_t)n, buf, &dst, &out);
      free(buf);
      return out;
    }
    int e = errno;
    free(buf);
    if (e != ERANGE) return throw_errno(env, e, "lgetxattr");
    need = GETX(NULL, 0); /* grew meanwhile: ask again */
    if (need < 0) return throw_errno(env, errno, "lgetxattr");
  }
  return throw_errno(env, ERANGE, "lgetxattr");
#undef GETX
}

static napi_value set_xattr(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char path[PATH_BUF], name[256];
  int fd = -1;
  if (argc < 3) return throw_type(env, "setXattr: 3 arguments expected");
  int use_fd = get_fd_arg(env, argv[0], &fd);
  if (!use_fd && get_path(env, argv[0], path, sizeof path) != 0) return throw_type(env, "setXattr: bad path");
  if (get_path(env, argv[1], name, sizeof name) != 0) return throw_type(env, "setXattr: bad name");
  uint8_t *val;
  size_t len;
  if (get_bytes(env, argv[2], &val, &len) != 0) return throw_type(env, "setXattr: value must be a Buffer");
  int r = use_fd ? fsetxattr(fd, name, val, len, 0) : lsetxattr(path, name, val, len, 0);
  if (r != 0) return throw_errno(env, errno, "lsetxattr");
  return NULL;
}

/* ---- atomic swap ---------------------------------------------------------- */

static napi_value rename_exchange(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char a[PATH_BUF], b[PATH_BUF];
  if (argc < 2 || get_path(env, argv[0], a, sizeof a) != 0 || get_path(env, argv[1], b, sizeof b) != 0)
    return throw_type(env, "renameExchange: bad path");
  if (syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) != 0)
    return throw_errno(env, errno, "renameat2(RENAME_EXCHANGE)");
  return NULL;
}

/* ---- exact timestamps ------------------------------------------------------
 * node:fs passes times as a double number of seconds, which cannot hold
 * nanoseconds at today's epoch; this takes seconds and nanoseconds apart. */

static napi_value set_times(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 5) return throw_type(env, "setTimes: 5 arguments expected");
  struct timespec ts[2];
  ts[0].tv_sec = (time_t)get_i64(env, argv[1]);
  ts[0].tv_nsec = (long)get_i64(env, argv[2]);
  ts[1].tv_sec = (time_t)get_i64(env, argv[3]);
  ts[1].tv_nsec = (long)get_i64(env, argv[4]);
  if (ts[0].tv_nsec < 0 || ts[0].tv_nsec >= 1000000000L || ts[1].tv_nsec < 0 || ts[1].tv_nsec >= 1000000000L)
    return throw_type(env, "setTimes: nanoseconds out of range");
  int fd;
  if (get_fd_arg(env, argv[0], &fd)) {
    if (futimens(fd, ts) != 0) return throw_errno(env, errno, "futimens");
    return NULL;
  }
  char path[PATH_BUF];
  if (get_path(env, argv[0], path, sizeof path) != 0) return throw_type(env, "setTimes: bad path");
  if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) != 0) return throw_errno(env, errno, "utimensat");
  return NULL;
}

/* ---- syncfs (asynchronous: flushing a filesystem can take seconds) --------- */

typedef struct {
  napi_async_work work;
  napi_ref callback;
  int fd;
  int err;
} syncfs_job;

static void syncfs_execute(napi_env env, void *data) {
  (void)env;
  syncfs_job *job = data;
  job->err = syncfs(job->fd) == 0 ? 0 : errno;
}

static void syncfs_complete(napi_env env, napi_status status, void *data) {
  syncfs_job *job = data;
  napi_value cb, global, arg;
  napi_get_reference_value(env, job->callback, &cb);
  napi_get_global(env, &global);
  if (status != napi_ok || job->err != 0) {
    arg = errno_error(env, job->err ? job->err : EIO, "syncfs");
  } else {
    napi_get_null(env, &arg);
  }
  napi_call_function(env, global, cb, 1, &arg, NULL);
  napi_delete_reference(env, job->callback);
  napi_delete_async_work(env, job->work);
  free(job);
}

static napi_value do_syncfs(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) return throw_type(env, "syncfs: fd expected");
  syncfs_job *job = calloc(1, sizeof *job);
  if (!job) return throw_errno(env, ENOMEM, "calloc");
  job->fd = fd;
  napi_create_reference(env, argv[1], 1, &job->callback);
  napi_value name;
  napi_create_string_utf8(env, "kova.syncfs", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, syncfs_execute, syncfs_complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return NULL;
}

/* ---- module ---------------------------------------------------------------- */

/* sha256Sync(data) -> Buffer(32): one digest on the calling thread. */
static napi_value sha256_sync(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint8_t *data;
  size_t len;
  if (argc < 1 || get_bytes(env, argv[0], &data, &len) != 0) return throw_type(env, "sha256: a Uint8Array expected");
  napi_value out;
  void *dst;
  napi_create_buffer(env, 32, &dst, &out);
  sha256(data, len, dst);
  return out;
}

NAPI_MODULE_INIT() {
  sha256_select();
  napi_property_descriptor props[] = {
      {"chunkStateSize", NULL, chunk_state_size, NULL, NULL, NULL, napi_default, NULL},
      {"chunkReset", NULL, chunk_reset, NULL, NULL, NULL, napi_default, NULL},
      {"chunkHash", NULL, chunk_hash, NULL, NULL, NULL, napi_default, NULL},
      {"chunkHashFinal", NULL, chunk_hash_final, NULL, NULL, NULL, napi_default, NULL},
      {"sha256Each", NULL, sha256_each, NULL, NULL, NULL, napi_default, NULL},
      {"sha256", NULL, sha256_sync, NULL, NULL, NULL, napi_default, NULL},
      {"readDirStats", NULL, read_dir_stats, NULL, NULL, NULL, napi_default, NULL},
      {"seekData", NULL, seek_data, NULL, NULL, NULL, napi_default, NULL},
      {"seekHole", NULL, seek_hole, NULL, NULL, NULL, napi_default, NULL},
      {"mknod", NULL, do_mknod, NULL, NULL, NULL, napi_default, NULL},
      {"listXattrs", NULL, list_xattrs, NULL, NULL, NULL, napi_default, NULL},
      {"getXattr", NULL, get_xattr, NULL, NULL, NULL, napi_default, NULL},
      {"setXattr", NULL, set_xattr, NULL, NULL, NULL, napi_default, NULL},
      {"renameExchange", NULL, rename_exchange, NULL, NULL, NULL, napi_default, NULL},
      {"syncfs", NULL, do_syncfs, NULL, NULL, NULL, napi_default, NULL},
      {"setTimes", NULL, set_times, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
