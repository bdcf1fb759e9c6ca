/*
 * kova_native: the few system calls and the one hot loop that Node.js does
 * not give us.
 *
 *   chunkHash(data, gear, …, state, hints)     content-defined chunk boundaries
 *                                              and each chunk's BLAKE3, in one
 *                                              pass, streaming across buffers;
 *                                              hinted by a parent's chunks
 *   hashEach(buffers, callback)                BLAKE3 of many buffers, on the
 *                                              libuv thread pool (async)
 *   hash(data)                                 one BLAKE3, synchronously
 *   hashKernel()                               which BLAKE3 kernel runs here
 *   readDirStats(dirFd, callback)              a directory's names and lstat of
 *                                              each, in one thread-pool job
 *   readSmallFiles(dirFd, job, callback)       open, check, read and hash many
 *                                              small files of one directory,
 *                                              in one thread-pool job
 *   seekData(fd, off) / seekHole(fd, off)      sparse-file extents (lseek)
 *   mknod(path, mode, major, minor)            FIFOs and device nodes
 *   listXattrs / getXattr / setXattr           extended attributes, never
 *                                              following a symlink
 *   renameExchange(a, b)                       atomic swap of two paths
 *   setTimes(pathOrFd, aSec, aNsec, mSec, mNsec) exact (nanosecond) times,
 *                                              never following a symlink
 *   syncfs(fd, callback)                       flush one filesystem (async)
 *   mallocStats()                              the C heap as glibc sees it
 *                                              (all arenas), for diagnosis
 *   mallocTrim()                               hand the C heap's free pages
 *                                              back to the system
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
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "blake3.h"

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

/* ---- chunking and hashing in one pass -------------------------------------
 * chunk_state carries, between buffers, the gear hash, the bytes of the
 * current chunk seen so far, and the BLAKE3 state of those bytes: so a chunk
 * may span buffers, and each chunk is hashed just after it is scanned, while
 * its bytes are still in the CPU cache (hashing them again from memory would
 * cost more than the hash itself).
 *
 * Hints: a file that changed since the parent snapshot is chunked with the
 * parent's chunks as hints (offset in the stream, length, id). Chunking is a
 * function of the bytes from a chunk's start, so at a cut s where the parent
 * had a chunk [s, e) that a scan ended, the same bytes would be cut at e
 * again: when the hash of the bytes [s, e) equals the parent's id, the chunk
 * is taken without scanning. Otherwise (or when the chunk would end in a
 * later buffer) the scanner runs, and after each of its cuts the hints are
 * tried again. Unchanged stretches thus cost a hash, not a scan. */

typedef struct {
  const uint32_t *gear;
  size_t min, avg, max;
  uint32_t mask_s, mask_l;
} scan_params;

typedef struct {
  uint64_t stream; /* stream offset of the next buffer's first byte */
  uint64_t hinted; /* bytes taken from verified hints */
  uint64_t misses; /* hints whose hash differed */
  uint32_t h;
  uint32_t pos; /* bytes of the open chunk seen so far */
  b3_hasher hasher;
} chunk_state;

/* Hints, sorted by offset (distinct). */
typedef struct {
  const double *off;
  const uint32_t *len;
  const uint8_t *ids;
  size_t n;
} hint_set;

/* hint_at returns the index of the hint at stream offset `at`, or -1. */
static ptrdiff_t hint_at(const hint_set *hs, uint64_t at) {
  size_t lo = 0, hi = hs->n;
  double x = (double)at;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (hs->off[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo < hs->n && hs->off[lo] == x ? (ptrdiff_t)lo : -1;
}

/* scan_hash chunks one buffer: writes the end offsets of the chunks that end
 * in it to cuts (room for len / min + 2) and their digests to digests, and
 * returns how many. The bytes of the chunk still open are hashed into st. */
static size_t scan_hash(const uint8_t *data, size_t len, const scan_params *sp, chunk_state *st, const hint_set *hs, uint32_t *cuts,
                        uint8_t *digests) {
  uint32_t h = st->h;
  size_t pos = st->pos;
  size_t count = 0, i = 0, start = 0;
  while (i < len) {
    if (pos == 0 && hs && hs->n) {
      /* At a cut: take the parent's chunk here if its bytes are unchanged. */
      ptrdiff_t k = hint_at(hs, st->stream + i);
      if (k >= 0) {
        size_t l = hs->len[k];
        if (l >= sp->min && l <= sp->max && l <= len - i) {
          uint8_t *d = digests + 32 * count;
          b3_hash(data + i, l, d);
          if (memcmp(d, hs->ids + 32 * k, 32) == 0) {
            i += l;
            cuts[count++] = (uint32_t)i;
            start = i;
            st->hinted += l;
            continue;
          }
          st->misses++;
        }
      }
    }
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
      b3_update(&st->hasher, data + start, i - start);
      b3_final(&st->hasher, digests + 32 * count);
      b3_init(&st->hasher);
      cuts[count++] = (uint32_t)i;
      start = i;
      pos = 0;
      h = 0;
    }
  }
  if (start < len) b3_update(&st->hasher, data + start, len - start);
  st->h = h;
  st->pos = (uint32_t)pos;
  st->stream += len;
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
  hint_set hints;
  napi_ref keep_hints;
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
  job->count = scan_hash(job->data, job->len, &job->sp, job->state, &job->hints, job->cuts, job->digests);
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
  if (job->keep_hints) napi_delete_reference(env, job->keep_hints);
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

/* state_arg reads the one argument of a chunk-state function: NULL, with a
 * TypeError thrown, when it is not a state buffer. */
static chunk_state *state_arg(napi_env env, napi_callback_info info, const char *fn) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  chunk_state *st = argc < 1 ? NULL : get_state(env, argv[0]);
  if (!st) {
    char msg[64];
    snprintf(msg, sizeof msg, "%s: bad state buffer", fn);
    throw_type(env, msg);
  }
  return st;
}

/* chunkReset(state) starts a new stream. */
static napi_value chunk_reset(napi_env env, napi_callback_info info) {
  chunk_state *st = state_arg(env, info, "chunkReset");
  if (!st) return NULL;
  memset(st, 0, sizeof *st);
  b3_init(&st->hasher);
  return NULL;
}

/* chunkStats(state) -> {stream, hinted, misses}: bytes pushed since the
 * reset, bytes of them taken from verified hints, and hints that missed. */
static napi_value chunk_stats(napi_env env, napi_callback_info info) {
  chunk_state *st = state_arg(env, info, "chunkStats");
  if (!st) return NULL;
  napi_value out, v;
  napi_create_object(env, &out);
  napi_create_double(env, (double)st->stream, &v);
  napi_set_named_property(env, out, "stream", v);
  napi_create_double(env, (double)st->hinted, &v);
  napi_set_named_property(env, out, "hinted", v);
  napi_create_double(env, (double)st->misses, &v);
  napi_set_named_property(env, out, "misses", v);
  return out;
}

/* get_hints reads {offsets: Float64Array, lengths: Uint32Array, ids: Buffer}
 * (offsets sorted and distinct; 32 bytes of id per hint), or null. */
static int get_hints(napi_env env, napi_value v, hint_set *hs) {
  memset(hs, 0, sizeof *hs);
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t == napi_null || t == napi_undefined) return 0;
  if (t != napi_object) return -1;
  napi_value offs, lens, ids;
  if (napi_get_named_property(env, v, "offsets", &offs) != napi_ok || napi_get_named_property(env, v, "lengths", &lens) != napi_ok ||
      napi_get_named_property(env, v, "ids", &ids) != napi_ok)
    return -1;
  bool ta = false;
  napi_typedarray_type tt;
  size_t n_off, n_len, n_ids, boff;
  void *p_off, *p_len;
  uint8_t *p_ids;
  napi_value ab;
  if (napi_is_typedarray(env, offs, &ta) != napi_ok || !ta) return -1;
  napi_get_typedarray_info(env, offs, &tt, &n_off, &p_off, &ab, &boff);
  if (tt != napi_float64_array) return -1;
  if (napi_is_typedarray(env, lens, &ta) != napi_ok || !ta) return -1;
  napi_get_typedarray_info(env, lens, &tt, &n_len, &p_len, &ab, &boff);
  if (tt != napi_uint32_array) return -1;
  if (get_bytes(env, ids, &p_ids, &n_ids) != 0) return -1;
  if (n_len != n_off || n_ids != 32 * n_off) return -1;
  for (size_t i = 1; i < n_off; i++)
    if (!(((const double *)p_off)[i - 1] < ((const double *)p_off)[i])) return -1;
  hs->off = p_off;
  hs->len = p_len;
  hs->ids = p_ids;
  hs->n = n_off;
  return 0;
}

/* chunkHash(data, gear, min, avg, max, maskS, maskL, state, hints, callback?)
 * -> {cuts: Uint32Array, digests: Buffer}: the offsets in `data` where chunks
 * end and the BLAKE3 of each (32 bytes each, in order; a chunk that began in
 * an earlier buffer is hashed whole). `hints` is null or the parent's chunks
 * (see get_hints). With a callback it runs on the thread pool; `data`,
 * `state` and `hints` must not be touched until it is called. */
static napi_value chunk_hash(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value argv[10];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 9) return throw_type(env, "chunkHash: 9 arguments expected");
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
  hint_set hints;
  if (get_hints(env, argv[8], &hints) != 0) return throw_type(env, "chunkHash: bad hints");
  size_t cap = len / sp.min + 2;
  uint32_t *cuts = malloc(cap * sizeof(uint32_t));
  uint8_t *digests = malloc(cap * 32);
  if (!cuts || !digests) {
    free(cuts);
    free(digests);
    return throw_errno(env, ENOMEM, "malloc");
  }
  napi_valuetype cbt = napi_undefined;
  if (argc >= 10) napi_typeof(env, argv[9], &cbt);
  if (cbt != napi_function) {
    size_t count = scan_hash(data, len, &sp, st, &hints, cuts, digests);
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
  job->hints = hints;
  job->cuts = cuts;
  job->digests = digests;
  napi_create_reference(env, argv[0], 1, &job->keep_data);
  napi_create_reference(env, argv[7], 1, &job->keep_state);
  if (hints.n) napi_create_reference(env, argv[8], 1, &job->keep_hints);
  napi_create_reference(env, argv[9], 1, &job->callback);
  napi_value name;
  napi_create_string_utf8(env, "kova.chunkHash", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, scan_execute, scan_complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return NULL;
}

/* chunkHashFinal(state) -> the digest of the chunk still open (the last one
 * of the stream), or null when no byte is pending; then resets the state. */
static napi_value chunk_hash_final(napi_env env, napi_callback_info info) {
  chunk_state *st = state_arg(env, info, "chunkHashFinal");
  if (!st) return NULL;
  napi_value out;
  if (st->pos == 0) {
    napi_get_null(env, &out);
  } else {
    void *dst;
    napi_create_buffer(env, 32, &dst, &out);
    b3_final(&st->hasher, dst);
  }
  memset(st, 0, sizeof *st);
  b3_init(&st->hasher);
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
} hash_job;

static void hash_execute(napi_env env, void *data) {
  (void)env;
  hash_job *job = data;
  for (size_t i = 0; i < job->count; i++) b3_hash(job->ptrs[i], job->lens[i], job->digests + 32 * i);
}

static void hash_complete(napi_env env, napi_status status, void *data) {
  hash_job *job = data;
  napi_value cb, global, args[2];
  napi_get_reference_value(env, job->callback, &cb);
  napi_get_global(env, &global);
  if (status != napi_ok || job->failed) {
    napi_value message;
    napi_create_string_utf8(env, "hashEach: hashing failed", NAPI_AUTO_LENGTH, &message);
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

/* hashEach(buffers: Uint8Array[], callback(err, digests: Buffer)) hashes
 * each buffer on a thread-pool thread; digests are 32 bytes each, in order.
 * The buffers must not be modified until the callback runs. */
static napi_value hash_each(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool is_arr = false;
  if (argc < 2 || napi_is_array(env, argv[0], &is_arr) != napi_ok || !is_arr) return throw_type(env, "hashEach: an array of buffers expected");
  uint32_t count;
  napi_get_array_length(env, argv[0], &count);
  hash_job *job = calloc(1, sizeof *job);
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
      return throw_type(env, "hashEach: every element must be a Uint8Array");
    }
    job->ptrs[i] = p;
    job->lens[i] = l;
  }
  napi_create_reference(env, argv[0], 1, &job->keep);
  napi_create_reference(env, argv[1], 1, &job->callback);
  napi_value name;
  napi_create_string_utf8(env, "kova.hashEach", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, hash_execute, hash_complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return NULL;
}

/* ---- directory listing with lstat, on the thread pool ---------------------- */

#define STAT_FIELDS 13
#define NUM_FIELDS 11
#define BIG_FIELDS 5

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
  size_t *order;   /* the entries by name (bytes, as Buffer.compare orders them) */
} dir_job;

static void dir_free(dir_job *job) {
  for (size_t i = 0; i < job->count; i++) free(job->names[i]);
  free(job->names);
  free(job->name_lens);
  free(job->stats);
  free(job->errnos);
  free(job->order);
  free(job);
}

/* Orders two entries' names as Buffer.compare does: bytes, then length. */
static int dir_name_cmp(const void *a, const void *b, void *arg) {
  const dir_job *job = arg;
  size_t i = *(const size_t *)a, j = *(const size_t *)b;
  size_t li = job->name_lens[i], lj = job->name_lens[j];
  int c = memcmp(job->names[i], job->names[j], li < lj ? li : lj);
  if (c != 0) return c;
  return li < lj ? -1 : li > lj ? 1 : 0;
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
  if (job->err) return;
  job->order = malloc((job->count ? job->count : 1) * sizeof(size_t));
  if (!job->order) { job->err = ENOMEM; return; }
  for (size_t i = 0; i < job->count; i++) job->order[i] = i;
  qsort_r(job->order, job->count, sizeof(size_t), dir_name_cmp, job);
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
    napi_value result, names, ends_ab, ends, stats_ab, stats, errs_ab, errs;
    napi_create_object(env, &result);
    /* Every name in one buffer, with where each ends: a buffer per name
     * cost an allocation and a call into JavaScript each, on the main thread. */
    size_t total = 0;
    for (size_t i = 0; i < job->count; i++) total += job->name_lens[i];
    void *nd, *xd;
    napi_create_buffer(env, total ? total : 1, &nd, &names);
    napi_create_arraybuffer(env, job->count * sizeof(uint32_t), &xd, &ends_ab);
    size_t at = 0;
    for (size_t i = 0; i < job->count; i++) {
      size_t k = job->order[i];
      memcpy((char *)nd + at, job->names[k], job->name_lens[k]);
      at += job->name_lens[k];
      ((uint32_t *)xd)[i] = (uint32_t)at;
    }
    napi_create_typedarray(env, napi_uint32_array, job->count, ends_ab, 0, &ends);
    napi_set_named_property(env, result, "ends", ends);
    /* Numbers as doubles and the 64-bit fields as int64, so JavaScript
     * makes a BigInt only for the fields that need one. */
    void *sd, *ed, *bd;
    napi_value bigs_ab, bigs;
    napi_create_arraybuffer(env, job->count * NUM_FIELDS * sizeof(double), &sd, &stats_ab);
    napi_create_arraybuffer(env, job->count * BIG_FIELDS * sizeof(int64_t), &bd, &bigs_ab);
    for (size_t i = 0; i < job->count; i++) {
      const int64_t *f = job->stats + job->order[i] * STAT_FIELDS;
      double *num = (double *)sd + i * NUM_FIELDS;
      int64_t *big = (int64_t *)bd + i * BIG_FIELDS;
      int overflow = 0;
      for (int k = 0; k < 2; k++) {
        int64_t ns;
        if (__builtin_mul_overflow(f[4 + 2 * k], (int64_t)1000000000, &ns) || __builtin_add_overflow(ns, f[5 + 2 * k], &ns)) {
          overflow |= 1 << k;
          ns = 0;
        }
        big[k] = ns;
        num[6 + 2 * k] = (double)f[4 + 2 * k];
        num[7 + 2 * k] = (double)f[5 + 2 * k];
      }
      num[0] = (double)f[0];
      num[1] = (double)f[1];
      num[2] = (double)f[2];
      num[3] = (double)f[3];
      num[4] = (double)f[10];
      num[5] = (double)f[12];
      num[10] = overflow;
      big[2] = f[8];
      big[3] = f[9];
      big[4] = f[11];
    }
    napi_create_typedarray(env, napi_float64_array, job->count * NUM_FIELDS, stats_ab, 0, &stats);
    napi_create_typedarray(env, napi_bigint64_array, job->count * BIG_FIELDS, bigs_ab, 0, &bigs);
    napi_set_named_property(env, result, "bigs", bigs);
    napi_create_arraybuffer(env, job->count * sizeof(int32_t), &ed, &errs_ab);
    for (size_t i = 0; i < job->count; i++) ((int32_t *)ed)[i] = job->errnos[job->order[i]];
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

/* readDirStats(dirFd, callback(err, {names, ends, stats, bigs, errnos}))
 * lists the open directory and lstat()s every entry relative to it (fstatat
 * with AT_SYMLINK_NOFOLLOW), all in one thread-pool job, and gives the
 * entries sorted by name (bytes, as Buffer.compare orders them). `names` is
 * every name back to back, `ends` (Uint32Array) where each ends in it.
 * `stats` (Float64Array)
 * holds 11 numbers per entry: mode, uid, gid, size, nlink, blocks, mtime s,
 * mtime ns, ctime s, ctime ns, and overflow bits (1: mtime, 2: ctime do not
 * fit in int64 nanoseconds); `bigs` (BigInt64Array) 5: mtime and ctime in
 * nanoseconds, ino, dev, rdev (the last three as unsigned bit patterns). */
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

/* ---- reading many small files of one directory, on the thread pool -------- */

/* Statuses of readSmallFiles besides byte counts (>= 0) and -errno. */
#define SMALL_REPLACED (-100000) /* not the regular file listed (type or inode differ) */
#define SMALL_XATTRS (-100001)   /* has extended attributes (or listing them failed): read it alone */

typedef struct {
  napi_async_work work;
  napi_ref callback;
  napi_ref keep; /* the job object: its buffers stay alive while we use them */
  int dirfd;
  size_t count;
  const char *names;     /* NUL-terminated names, back to back */
  const double *sizes;   /* bytes to read of each (the listed size) */
  const uint64_t *inos;  /* the listed inode of each */
  uint8_t *data;         /* each file's bytes at the sum of the sizes before it */
  int32_t *status;       /* bytes read, -errno, or SMALL_* */
  uint8_t *digests;      /* BLAKE3 of the bytes read, 32 each */
} small_job;

static void small_execute(napi_env env, void *data) {
  (void)env;
  small_job *job = data;
  const char *name = job->names;
  size_t off = 0;
  for (size_t i = 0; i < job->count; i++, name += strlen(name) + 1) {
    size_t want = (size_t)job->sizes[i];
    uint8_t *out = job->data + off;
    off += want;
    /* As the per-file path: never through a symlink, and O_NONBLOCK so a
     * FIFO swapped in meanwhile cannot hang us (fstat rejects it below). */
    int fd = openat(job->dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      job->status[i] = -errno;
      continue;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
      job->status[i] = -errno;
    } else if (!S_ISREG(st.st_mode) || (uint64_t)st.st_ino != job->inos[i]) {
      job->status[i] = SMALL_REPLACED;
    } else {
      ssize_t x = flistxattr(fd, NULL, 0);
      if (x > 0 || (x < 0 && errno != ENOTSUP)) {
        job->status[i] = SMALL_XATTRS;
      } else {
        size_t got = 0;
        int err = 0;
        while (got < want) {
          ssize_t r = read(fd, out + got, want - got);
          if (r < 0) {
            if (errno == EINTR) continue;
            err = errno;
            break;
          }
          if (r == 0) break;
          got += (size_t)r;
        }
        if (err) {
          job->status[i] = -err;
        } else {
          job->status[i] = (int32_t)got;
          b3_hash(out, got, job->digests + 32 * i);
        }
      }
    }
    close(fd);
  }
}

static void small_complete(napi_env env, napi_status status, void *data) {
  small_job *job = data;
  napi_value cb, global, args[1];
  napi_get_reference_value(env, job->callback, &cb);
  napi_get_global(env, &global);
  if (status != napi_ok) {
    napi_value message;
    napi_create_string_utf8(env, "readSmallFiles: the job did not run", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &args[0]);
  } else {
    napi_get_null(env, &args[0]);
  }
  napi_call_function(env, global, cb, 1, args, NULL);
  napi_delete_reference(env, job->callback);
  napi_delete_reference(env, job->keep);
  napi_delete_async_work(env, job->work);
  free(job);
}

static int small_field(napi_env env, napi_value obj, const char *key, napi_typedarray_type want, void **ptr, size_t *len) {
  napi_value v, ab;
  bool is_ta = false;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok || napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) return -1;
  napi_typedarray_type tt;
  size_t off;
  if (napi_get_typedarray_info(env, v, &tt, len, ptr, &ab, &off) != napi_ok || tt != want) return -1;
  return 0;
}

/* readSmallFiles(dirFd, job, callback(err)) opens, checks, reads and hashes
 * several regular files of the directory open as dirFd, in one thread-pool
 * job. `job` holds: names (Uint8Array, NUL-terminated names back to back),
 * sizes (Float64Array: bytes to read, at most, of each), inos
 * (BigUint64Array: the inode each must have), data (Uint8Array, the sum of
 * the sizes: each file's bytes go at the sum of the sizes before it),
 * status (Int32Array: bytes read, -errno, -100000 when the name is no longer
 * the regular file listed, -100001 when it has extended attributes) and
 * digests (Uint8Array, 32 bytes each: BLAKE3 of the bytes read). The arrays
 * must not be touched until the callback runs. */
static napi_value read_small_files(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  if (argc < 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) return throw_type(env, "readSmallFiles: fd expected");
  void *names, *sizes, *inos, *out, *status, *digests;
  size_t names_len, count, ino_count, out_len, status_count, digests_len;
  if (small_field(env, argv[1], "names", napi_uint8_array, &names, &names_len) != 0 ||
      small_field(env, argv[1], "sizes", napi_float64_array, &sizes, &count) != 0 ||
      small_field(env, argv[1], "inos", napi_biguint64_array, &inos, &ino_count) != 0 ||
      small_field(env, argv[1], "data", napi_uint8_array, &out, &out_len) != 0 ||
      small_field(env, argv[1], "status", napi_int32_array, &status, &status_count) != 0 ||
      small_field(env, argv[1], "digests", napi_uint8_array, &digests, &digests_len) != 0)
    return throw_type(env, "readSmallFiles: bad job");
  /* Everything is checked here, so the pool thread cannot overrun a buffer. */
  double total = 0;
  for (size_t i = 0; i < count; i++) {
    double s = ((const double *)sizes)[i];
    if (!(s >= 0 && s <= 1 << 30)) return throw_type(env, "readSmallFiles: bad size");
    total += s;
  }
  size_t nuls = 0;
  for (size_t i = 0; i < names_len; i++) nuls += ((const char *)names)[i] == 0;
  if (ino_count != count || status_count != count || digests_len < count * 32 || (double)out_len < total || nuls != count ||
      (names_len > 0 && ((const char *)names)[names_len - 1] != 0))
    return throw_type(env, "readSmallFiles: inconsistent job");
  small_job *job = calloc(1, sizeof *job);
  if (!job) return throw_errno(env, ENOMEM, "calloc");
  job->dirfd = fd;
  job->count = count;
  job->names = names;
  job->sizes = sizes;
  job->inos = inos;
  job->data = out;
  job->status = status;
  job->digests = digests;
  napi_create_reference(env, argv[1], 1, &job->keep);
  napi_create_reference(env, argv[2], 1, &job->callback);
  napi_value name;
  napi_create_string_utf8(env, "kova.readSmallFiles", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, small_execute, small_complete, job, &job->work);
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

/* ---- direct I/O ------------------------------------------------------------
 * Large files are read with O_DIRECT (file-reader.ts): no page-cache copy,
 * and a snapshot does not fill the cache with the volume it reads. Buffers,
 * offsets and lengths must then be aligned to DIRECT_ALIGN. */

#define DIRECT_ALIGN 4096

/* setDirect(fd, on): sets or clears O_DIRECT on an open file; false when the
 * file system refuses it (EINVAL). */
static napi_value set_direct(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  bool on = false;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_bool(env, argv[1], &on) != napi_ok) {
    return throw_type(env, "setDirect: fd and boolean expected");
  }
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return throw_errno(env, errno, "fcntl(F_GETFL)");
  int want = on ? (flags | O_DIRECT) : (flags & ~O_DIRECT);
  bool ok = true;
  if (want != flags && fcntl(fd, F_SETFL, want) != 0) {
    if (errno != EINVAL) return throw_errno(env, errno, "fcntl(F_SETFL)");
    ok = false;
  }
  napi_value out;
  napi_get_boolean(env, ok, &out);
  return out;
}

/* buffer_arg reads the call's one argument, a buffer; false when it is not one. */
static bool buffer_arg(napi_env env, napi_callback_info info, void **data, size_t *len) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  return argc >= 1 && napi_get_buffer_info(env, argv[0], data, len) == napi_ok;
}

/* alignOffset(buf): how many bytes from buf's start to the first address
 * aligned for direct I/O. */
static napi_value align_offset(napi_env env, napi_callback_info info) {
  void *data = NULL;
  size_t len = 0;
  if (!buffer_arg(env, info, &data, &len)) return throw_type(env, "alignOffset: buffer expected");
  napi_value out;
  napi_create_uint32(env, (uint32_t)((DIRECT_ALIGN - ((uintptr_t)data % DIRECT_ALIGN)) % DIRECT_ALIGN), &out);
  return out;
}

/* ---- huge pages ------------------------------------------------------------
 * On the virtual machines nodes run on, the first touch of a 4 KiB page costs
 * about 13 microseconds (54 MB of fresh buffers: 175 ms, against 2 ms to
 * fill them again). The engine's large buffers (read blocks, packs) are
 * therefore cut at a 2 MiB boundary and advised as huge pages, which the
 * kernel faults in 2 MiB at a time (5 ms for the same 54 MB) when
 * transparent huge pages are enabled for madvise (the default) or always. */

#define HUGE_PAGE (2u * 1024 * 1024)

/* hugeOffset(buf): bytes from buf's start to its first 2 MiB boundary, after
 * asking for huge pages over the whole 2 MiB pages from there on; without
 * such a boundary, the offset of the first address aligned for direct I/O.
 * Either is a multiple of DIRECT_ALIGN. madvise failing (a kernel without
 * transparent huge pages) changes nothing but the speed. */
static napi_value huge_offset(napi_env env, napi_callback_info info) {
  void *data = NULL;
  size_t len = 0;
  if (!buffer_arg(env, info, &data, &len)) return throw_type(env, "hugeOffset: buffer expected");
  uintptr_t at = (uintptr_t)data;
  size_t off = (HUGE_PAGE - at % HUGE_PAGE) % HUGE_PAGE;
  if (off + HUGE_PAGE <= len) {
    (void)madvise((void *)(at + off), (len - off) / HUGE_PAGE * HUGE_PAGE, MADV_HUGEPAGE);
  } else {
    off = (DIRECT_ALIGN - at % DIRECT_ALIGN) % DIRECT_ALIGN;
  }
  napi_value out;
  napi_create_uint32(env, (uint32_t)off, &out);
  return out;
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

/* hash(data) -> Buffer(32): one BLAKE3 digest on the calling thread. */
static napi_value hash_sync(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint8_t *data;
  size_t len;
  if (argc < 1 || get_bytes(env, argv[0], &data, &len) != 0) return throw_type(env, "hash: a Uint8Array expected");
  napi_value out;
  void *dst;
  napi_create_buffer(env, 32, &dst, &out);
  b3_hash(data, len, dst);
  return out;
}

/* mallocStats() -> {arenas, heapBytes, mmapBytes, inUseBytes, freeBytes}:
 * glibc's view of the C heap over all arenas (mallinfo2, malloc_info).
 * heapBytes are the arenas' pages (resident or not), inUseBytes what is
 * allocated, freeBytes what is free inside them: a large freeBytes is
 * fragmentation that malloc_trim may hand back. */
static napi_value malloc_stats_js(napi_env env, napi_callback_info info) {
  (void)info;
  struct mallinfo2 mi = mallinfo2();
  /* The arena count: one <heap nr="…"> element per arena in malloc_info's XML. */
  double arenas = 0;
  char *xml = NULL;
  size_t xml_len = 0;
  FILE *f = open_memstream(&xml, &xml_len);
  if (f) {
    malloc_info(0, f);
    fclose(f);
    for (const char *p = xml; p && (p = strstr(p, "<heap nr=")) != NULL; p++) arenas++;
    free(xml);
  }
  napi_value out, v;
  napi_create_object(env, &out);
  napi_create_double(env, arenas, &v);
  napi_set_named_property(env, out, "arenas", v);
  napi_create_double(env, (double)mi.arena, &v);
  napi_set_named_property(env, out, "heapBytes", v);
  napi_create_double(env, (double)mi.hblkhd, &v);
  napi_set_named_property(env, out, "mmapBytes", v);
  napi_create_double(env, (double)(mi.uordblks + mi.hblkhd), &v);
  napi_set_named_property(env, out, "inUseBytes", v);
  napi_create_double(env, (double)mi.fordblks, &v);
  napi_set_named_property(env, out, "freeBytes", v);
  return out;
}

/* mallocTrim() -> whether memory was released: returns the free pages of
 * every arena to the system (malloc_trim(0)). */
static napi_value malloc_trim_js(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  napi_get_boolean(env, malloc_trim(0) != 0, &out);
  return out;
}

static const char *hash_kernel_name = "portable";

/* hashKernel() -> "avx512" | "avx2" | "portable": the BLAKE3 kernel chosen at load. */
static napi_value hash_kernel(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  napi_create_string_utf8(env, hash_kernel_name, NAPI_AUTO_LENGTH, &out);
  return out;
}

NAPI_MODULE_INIT() {
  /* KOVA_HASH_KERNEL=avx2|portable caps the kernel (for tests and diagnosis). */
  hash_kernel_name = b3_select(getenv("KOVA_HASH_KERNEL"));
  napi_property_descriptor props[] = {
      {"chunkStateSize", NULL, chunk_state_size, NULL, NULL, NULL, napi_default, NULL},
      {"chunkReset", NULL, chunk_reset, NULL, NULL, NULL, napi_default, NULL},
      {"chunkHash", NULL, chunk_hash, NULL, NULL, NULL, napi_default, NULL},
      {"chunkHashFinal", NULL, chunk_hash_final, NULL, NULL, NULL, napi_default, NULL},
      {"chunkStats", NULL, chunk_stats, NULL, NULL, NULL, napi_default, NULL},
      {"hashEach", NULL, hash_each, NULL, NULL, NULL, napi_default, NULL},
      {"hash", NULL, hash_sync, NULL, NULL, NULL, napi_default, NULL},
      {"hashKernel", NULL, hash_kernel, NULL, NULL, NULL, napi_default, NULL},
      {"readDirStats", NULL, read_dir_stats, NULL, NULL, NULL, napi_default, NULL},
      {"readSmallFiles", NULL, read_small_files, NULL, NULL, NULL, napi_default, NULL},
      {"setDirect", NULL, set_direct, NULL, NULL, NULL, napi_default, NULL},
      {"alignOffset", NULL, align_offset, NULL, NULL, NULL, napi_default, NULL},
      {"hugeOffset", NULL, huge_offset, NULL, NULL, NULL, napi_default, NULL},
      {"seekData", NULL, seek_data, NULL, NULL, NULL, napi_default, NULL},
      {"seekHole", NULL, seek_hole, NULL, NULL, NULL, napi_default, NULL},
      {"mknod", NULL, do_mknod, NULL, NULL, NULL, napi_default, NULL},
      {"listXattrs", NULL, list_xattrs, NULL, NULL, NULL, napi_default, NULL},
      {"getXattr", NULL, get_xattr, NULL, NULL, NULL, napi_default, NULL},
      {"setXattr", NULL, set_xattr, NULL, NULL, NULL, napi_default, NULL},
      {"renameExchange", NULL, rename_exchange, NULL, NULL, NULL, napi_default, NULL},
      {"syncfs", NULL, do_syncfs, NULL, NULL, NULL, napi_default, NULL},
      {"setTimes", NULL, set_times, NULL, NULL, NULL, napi_default, NULL},
      {"mallocStats", NULL, malloc_stats_js, NULL, NULL, NULL, napi_default, NULL},
      {"mallocTrim", NULL, malloc_trim_js, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
