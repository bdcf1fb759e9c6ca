/** diskUsage (volume-usage.ts): allocated bytes below a directory, symlinks not followed. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { diskUsage } from './volume-usage.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('diskUsage', () => {
  it('adds up the blocks of everything below, not what a symlink points to, and 0 for a missing directory', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-usage-'));
    dirs.push(root);
    const vol = path.join(root, 'vol');
    fs.mkdirSync(path.join(vol, 'sub'), { recursive: true });
    fs.mkdirSync(path.join(root, 'outside'));
    fs.writeFileSync(path.join(root, 'outside', 'big'), Buffer.alloc(1024 * 1024, 1));
    fs.symlinkSync('../outside', path.join(vol, 'link'));
    const before = await diskUsage(vol);
    expect(before).toBeLessThan(1024 * 1024);
    fs.writeFileSync(path.join(vol, 'sub', 'more'), Buffer.alloc(64 * 1024, 1));
    expect((await diskUsage(vol)) - before).toBeGreaterThanOrEqual(64 * 1024);
    expect(await diskUsage(path.join(root, 'missing'))).toBe(0);
  });
});
