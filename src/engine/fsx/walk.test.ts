/**
 * The shared directory walk (walk.ts) and the snapshot progress totals
 * built on it (scanner.ts): every entry below the top is visited once and
 * symlinks are never followed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { scanTotals } from '../snapshot/scanner.js';
import { tempDir } from '../testing.js';
import * as fsx from './fsx.js';
import { walkEntries } from './walk.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** tree/{a.txt (5 B), sub/{b.txt (7 B), deeper/c.txt (0 B)}, link -> ../outside, empty/} and outside/big (4 KiB). */
function makeTree(): string {
  const root = tempDir('kova-walk-');
  dirs.push(root);
  const tree = path.join(root, 'tree');
  fs.mkdirSync(path.join(tree, 'sub', 'deeper'), { recursive: true });
  fs.mkdirSync(path.join(root, 'outside'));
  fs.writeFileSync(path.join(tree, 'a.txt'), 'hello');
  fs.writeFileSync(path.join(tree, 'sub', 'b.txt'), 'goodbye');
  fs.writeFileSync(path.join(tree, 'sub', 'deeper', 'c.txt'), '');
  fs.writeFileSync(path.join(root, 'outside', 'big'), Buffer.alloc(4096, 1));
  fs.symlinkSync('../outside', path.join(tree, 'link'));
  fs.mkdirSync(path.join(tree, 'empty'));
  return tree;
}

async function names(dir: string): Promise<string[]> {
  const fd = await fsx.open(dir, fsx.OPEN_TOP_DIR);
  const out: string[] = [];
  try {
    await walkEntries(fd, (e) => void out.push(e.name.toString()));
  } finally {
    await fsx.close(fd);
  }
  return out.sort();
}

describe('walkEntries', () => {
  it('visits every entry below the directory once, without following symlinks', async () => {
    const tree = makeTree();
    expect(await names(tree)).toEqual(['a.txt', 'b.txt', 'c.txt', 'deeper', 'empty', 'link', 'sub']);
  });

  it('rejects when the top directory cannot be listed', async () => {
    await expect(walkEntries(-1, () => undefined)).rejects.toThrow();
  });
});

describe('scanTotals', () => {
  it('counts regular files and their sizes', async () => {
    const tree = makeTree();
    expect(await scanTotals([tree])).toEqual({ files: 3, bytes: 12 });
  });
});
