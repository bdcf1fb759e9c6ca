// Content generators for the benchmark volume. Every byte is a pure function
// of (seed, position, version), so any region can be regenerated on its own:
// database-like 8 KiB record pages, PRNG blocks, and text-like small files.
import { Rng, fillRandom, mix } from './prng.js';

/** Unit of large-file generation and of in-place mutation. */
export const BLOCK = 64 * 1024;
/** Page size of the database-like files. */
export const PAGE = 8192;
const PAGE_HEADER = 24;
const POOL_PAGES = 1024;
const ID_WIDTH = 10;
const TEXT_POOL_LINES = 50_000;

const WORDS = (
  'alpha amber anchor apple arrow aspen atlas aurora autumn badge bamboo basil beacon birch blossom ' +
  'breeze bronze canyon cedar cherry cinder citrus clover cobalt comet copper coral cosmos crystal ' +
  'cypress dawn delta desert drift dune eagle ember falcon fern fjord flint forest fossil frost ' +
  'garnet glacier granite harbor hazel horizon indigo iris island ivory jade jasper juniper kelp ' +
  'lagoon lantern laurel lemon lilac linen lotus lunar maple marble meadow mint mist nectar nimbus ' +
  'oak ocean olive onyx orbit orchid pebble pepper pine plum polar prairie quartz quill raven reef ' +
  'river rowan saffron sage sierra silver slate spruce summit tango thistle thunder tulip tundra ' +
  'valley velvet violet walnut willow winter yarrow zephyr zinc'
).split(' ');
const CITIES = ['Lisbon', 'Porto', 'Krakow', 'Lyon', 'Tartu', 'Ghent', 'Bergen', 'Turin', 'Brno', 'Malmo', 'Cork', 'Graz'];
const STATUSES = ['new', 'paid', 'packed', 'shipped', 'delivered', 'returned', 'cancelled'];
const LEVELS = ['INFO ', 'DEBUG', 'WARN ', 'ERROR', 'INFO ', 'INFO '];

function words(rng: Rng, n: number): string {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(rng.pick(WORDS));
  return out.join(' ');
}

function timestamp(rng: Rng): string {
  const d = new Date(Date.UTC(2024, 0, 1) + rng.int(365 * 86_400) * 1000 + rng.int(1000));
  return d.toISOString();
}

function hex(rng: Rng, digits: number): string {
  let s = '';
  while (s.length < digits) s += rng.u32().toString(16).padStart(8, '0');
  return s.slice(0, digits);
}

function recordRow(rng: Rng): string {
  const user = `${rng.pick(WORDS)}.${rng.pick(WORDS)}${rng.int(100)}`;
  const tags = Array.from({ length: 1 + rng.int(3) }, () => `"${rng.pick(WORDS)}"`).join(',');
  return (
    `{"id":${'0'.repeat(ID_WIDTH)},"ts":"${timestamp(rng)}","user":"${user}","email":"${user}@${rng.pick(WORDS)}.example",` +
    `"city":"${rng.pick(CITIES)}","qty":${1 + rng.int(20)},"price":${(rng.int(500_000) / 100).toFixed(2)},` +
    `"status":"${rng.pick(STATUSES)}","ref":"${hex(rng, 12)}","tags":[${tags}],"note":"${words(rng, rng.int(12))}"}\n`
  );
}

interface RecordPool {
  pages: Buffer;
  /** Offsets (within the pool) of each row's id digits, per pool page. */
  idOffsets: Int32Array[];
}

let recordPool: RecordPool | undefined;

/** 8 MiB of record pages, built once; file pages are patched copies of these. */
function getRecordPool(): RecordPool {
  if (recordPool) return recordPool;
  const rng = new Rng(0x706f6f6c);
  const pages = Buffer.alloc(POOL_PAGES * PAGE);
  const idOffsets: Int32Array[] = [];
  for (let p = 0; p < POOL_PAGES; p++) {
    const base = p * PAGE;
    // Pages are 70-100% full, like a table with some free space per page.
    const limit = base + PAGE - rng.int(PAGE * 0.3);
    const ids: number[] = [];
    let pos = base + PAGE_HEADER;
    while (true) {
      const row = recordRow(rng);
      if (pos + row.length > limit) break;
      ids.push(pos + 6);
      pos += pages.write(row, pos, 'latin1');
    }
    idOffsets.push(Int32Array.from(ids));
  }
  recordPool = { pages, idOffsets };
  return recordPool;
}

function writeDigits(buf: Buffer, offset: number, value: number): void {
  for (let i = ID_WIDTH - 1; i >= 0; i--) {
    buf[offset + i] = 48 + (value % 10);
    value = Math.floor(value / 10);
  }
}

/** Writes `count` record pages starting at page number `firstPage` into `out`. */
export function fillRecordPages(out: Buffer, fileSeed: number, firstPage: number, count: number, version: number): void {
  const pool = getRecordPool();
  for (let i = 0; i < count; i++) {
    const pageNo = firstPage + i;
    const h = mix(fileSeed, pageNo, version);
    const src = h % POOL_PAGES;
    const dst = i * PAGE;
    pool.pages.copy(out, dst, src * PAGE, (src + 1) * PAGE);
    out.writeUInt32LE(pageNo, dst);
    out.writeUInt32LE(h, dst + 4);
    out.writeUInt32LE(version, dst + 8);
    const ids = pool.idOffsets[src] ?? new Int32Array(0);
    for (let r = 0; r < ids.length; r++) {
      writeDigits(out, dst + (ids[r] as number) - src * PAGE, pageNo * 64 + r);
    }
  }
}

/** Fills `out` (length a multiple of 4, 4-byte aligned) with PRNG bytes. */
export function fillRandomBytes(out: Buffer, seed: number): void {
  fillRandom(new Uint32Array(out.buffer, out.byteOffset, out.length >>> 2), seed);
}

/** Allocates a 4-byte-aligned buffer (not from Node's shared small-buffer pool). */
export function alignedBuffer(size: number): Buffer {
  return Buffer.from(new ArrayBuffer(Math.ceil(size / 4) * 4));
}

let textPool: { text: Buffer; starts: Int32Array } | undefined;

function textLine(rng: Rng): string {
  switch (rng.int(4)) {
    case 0:
      return `${timestamp(rng)} ${rng.pick(LEVELS)} [worker-${rng.int(16)}] req=${hex(rng, 16)} path=/api/v1/${rng.pick(WORDS)}/${rng.int(100_000)} status=${rng.pick([200, 200, 201, 204, 404, 500])} dur=${rng.int(900)}ms\n`;
    case 1:
      return `${rng.pick(WORDS)}.${rng.pick(WORDS)}.${rng.pick(WORDS)} = ${rng.int(2) ? rng.int(65_536) : `"${words(rng, 2)}"`}\n`;
    case 2:
      return `  const ${rng.pick(WORDS)}${rng.int(100)} = ${rng.pick(WORDS)}(${rng.pick(WORDS)}, ${rng.int(10_000)}); // ${words(rng, 1 + rng.int(6))}\n`;
    default:
      return `${words(rng, 4 + rng.int(14))}.\n`;
  }
}

/** A pool of distinct text lines; files draw random lines from it. */
function getTextPool(): { text: Buffer; starts: Int32Array } {
  if (textPool) return textPool;
  const rng = new Rng(0x74657874);
  const lines: string[] = [];
  for (let i = 0; i < TEXT_POOL_LINES; i++) lines.push(textLine(rng));
  const text = Buffer.from(lines.join(''), 'latin1');
  const starts = new Int32Array(TEXT_POOL_LINES + 1);
  for (let i = 0; i < TEXT_POOL_LINES; i++) starts[i + 1] = (starts[i] as number) + (lines[i] as string).length;
  textPool = { text, starts };
  return textPool;
}

/** Text-like content of exactly `size` bytes: a header plus random pool lines. */
export function textContent(seed: number, size: number): Buffer {
  const pool = getTextPool();
  const rng = new Rng(seed);
  const out = Buffer.alloc(size);
  let pos = out.write(`# generated ${hex(rng, 16)}\n`, 'latin1');
  while (pos < size) {
    const line = rng.int(TEXT_POOL_LINES);
    pos += pool.text.copy(out, pos, pool.starts[line], pool.starts[line + 1]);
  }
  return out;
}

/** Incompressible content of exactly `size` bytes. */
export function randomContent(seed: number, size: number): Buffer {
  const buf = alignedBuffer(size);
  fillRandomBytes(buf, seed);
  return buf.subarray(0, size);
}
