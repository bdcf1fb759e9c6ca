/**
 * content: a file of a snapshot read as a stream of verified bytes, whole
 * or a byte range of it, straight from the repository.
 *
 * One chunk is read at a time (readBlob checks it against its hash before
 * any of its bytes are handed on), so memory stays at one chunk whatever the
 * file's size; holes are produced as zeros without reading anything.
 */
import type { TreeNode } from '../format/tree.js';

/** The narrow view of a repository that reading content needs. */
export interface BlobReader {
  readBlob(id: string): Promise<Buffer>;
}

const ZERO_BLOCK = Buffer.alloc(1 << 20);

/**
 * fileBytes yields the bytes of `node` (a file) from `start` (inclusive) to
 * `end` (exclusive; default the file's size), in order.
 */
export async function* fileBytes(src: BlobReader, node: TreeNode, start = 0, end = node.size): AsyncGenerator<Buffer> {
  if (node.type !== 'file') throw new Error('fileBytes needs a file');
  const stop = Math.min(end, node.size);
  let pos = 0;
  for (const ref of node.content ?? []) {
    const refEnd = pos + ref.length;
    if (refEnd > start && pos < stop) {
      const from = Math.max(start, pos) - pos;
      const to = Math.min(stop, refEnd) - pos;
      if (ref.id === null) {
        for (let o = from; o < to; o += ZERO_BLOCK.length) yield ZERO_BLOCK.subarray(0, Math.min(ZERO_BLOCK.length, to - o));
      } else {
        const blob = await src.readBlob(ref.id);
        yield from === 0 && to === blob.length ? blob : blob.subarray(from, to);
      }
    }
    pos = refEnd;
    if (pos >= stop) break;
  }
}
