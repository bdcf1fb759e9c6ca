/* BLAKE3 (unkeyed, 32-byte output): the hash that names every object of a
 * repository. Our own implementation of the published specification, with a
 * streaming hasher whose state is plain bytes (so it can live in a buffer
 * owned by JavaScript and be carried from one buffer of a file to the next),
 * and kernels that compress 8 or 16 inputs at once with AVX2 or AVX-512.
 * b3_select() picks the widest kernel the CPU has, after checking that it
 * agrees with the portable code. */
#ifndef KOVA_BLAKE3_H
#define KOVA_BLAKE3_H

#include <stddef.h>
#include <stdint.h>

#define B3_OUT_LEN 32
#define B3_BLOCK_LEN 64
#define B3_CHUNK_LEN 1024
/* Enough for 2^54 chunks (16 EiB): one entry per set bit of the chunk count. */
#define B3_MAX_DEPTH 54

typedef struct {
  uint32_t cv[8];
  uint64_t counter; /* index of this chunk in the input */
  uint8_t buf[B3_BLOCK_LEN];
  uint8_t buf_len;
  uint8_t blocks; /* blocks of this chunk compressed so far */
  uint8_t pad[6];
} b3_chunk;

typedef struct {
  b3_chunk chunk;
  uint32_t stack_len;
  uint32_t pad;
  uint8_t stack[B3_MAX_DEPTH][32];
} b3_hasher;

void b3_init(b3_hasher *h);
void b3_update(b3_hasher *h, const uint8_t *data, size_t len);
/* b3_final writes the digest of everything given so far; h is not changed. */
void b3_final(const b3_hasher *h, uint8_t out[B3_OUT_LEN]);
void b3_hash(const uint8_t *data, size_t len, uint8_t out[B3_OUT_LEN]);
/* b3_select picks the fastest kernel the CPU supports and that agrees with
 * the portable one, no wider than `limit` ("avx512", "avx2", "portable";
 * NULL or "" for no limit); returns its name. */
const char *b3_select(const char *limit);

#endif
