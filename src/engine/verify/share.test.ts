/**
 * Verification a share at a time, and the snapshots a finding reaches: the
 * building blocks of scheduled checks that read every byte once per cycle
 * and mark exactly the snapshots that damage touches.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SnapshotRecord } from '../format/snapshot-record.js';
import { packName } from '../repo/master-index.js';
import { Repository } from '../repo/repository.js';
import { prng, tempDir } from '../testing.js';
import { packSlice } from './verify.js';

let work: string;
let repoDir: string;
let a: SnapshotRecord;
let b: SnapshotRecord;
let c: SnapshotRecord;

/** The packs holding a file's data in snapshot `s`. */
async function packsOfFile(s: SnapshotRecord, name: string): Promise<string[]> {
  const repo = await Repository.open(repoDir);
  try {
    const index = await repo.loadIndex();
    const node = (await repo.readTree(s.root.subtree!)).find((n) => n.name.toString() === name)!;
    return [...new Set(node.content!.filter((x) => x.id !== null).map((x) => index.get(x.id!)!.pack))];
  } finally {
    await repo.close();
  }
}

/** withCopy runs `fn` on a copy of the repository, so each case damages its own. */
async function withCopy<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(path.join(work, 'case-'));
  fs.cpSync(repoDir, dir, { recursive: true });
  try {
    return await fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

beforeAll(async () => {
  work = tempDir('kova-share-');
  repoDir = path.join(work, 'repo');
  const repo = await Repository.init(repoDir, { packSize: 256 * 1024 });
  const src = path.join(work, 'src');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'shared'), prng(1, 3_000_000));
  a = await repo.snapshot(src);
  fs.writeFileSync(path.join(src, 'only-b'), prng(2, 1_000_000));
  b = await repo.snapshot(src);
  const other = path.join(work, 'other');
  fs.mkdirSync(other);
  fs.writeFileSync(path.join(other, 'unrelated'), prng(3, 1_000_000));
  c = await repo.snapshot(other);
  await repo.close();
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

describe('verify by shares', () => {
  it('reads every pack exactly once over the shares of a cycle', async () => {
    const repo = await Repository.open(repoDir);
    try {
      const whole = await repo.verify({ readData: true });
      expect(whole.findings).toEqual([]);
      expect(whole.packs).toBeGreaterThan(8);
      // Each share reads exactly the packs whose id falls in it (pack ids are
      // random, so a share may hold none), and the shares add up to the whole.
      const packs = (await repo.packFiles()).map((n) => n.slice(n.lastIndexOf('/') + 1));
      const size = (p: string) => fs.statSync(path.join(repoDir, packName(p))).size;
      let bytes = 0;
      for (let slice = 0; slice < 4; slice++) {
        const r = await repo.verify({ readShare: { slice, of: 4 } });
        expect(r.findings).toEqual([]);
        expect(r.bytesRead).toBe(packs.filter((p) => packSlice(p, 4) === slice).reduce((n, p) => n + size(p), 0));
        bytes += r.bytesRead;
      }
      expect(bytes).toBe(whole.bytesRead);
    } finally {
      await repo.close();
    }
  });

  it('finds a damaged pack in its own share and in no other', async () => {
    const [victim] = await packsOfFile(b, 'only-b');
    await withCopy(async (dir) => {
      const file = path.join(dir, packName(victim!));
      const buf = fs.readFileSync(file);
      buf[100]! ^= 0xff;
      fs.writeFileSync(file, buf);
      const repo = await Repository.open(dir);
      try {
        for (let slice = 0; slice < 4; slice++) {
          const r = await repo.verify({ readShare: { slice, of: 4 } });
          const hit = r.findings.some((f) => f.pack === victim);
          expect(hit).toBe(slice === packSlice(victim!, 4));
        }
      } finally {
        await repo.close();
      }
    });
  });
});

describe('affectedBy', () => {
  it('names exactly the snapshots whose data lies in a damaged pack', async () => {
    const [onlyB] = await packsOfFile(b, 'only-b');
    const [shared] = await packsOfFile(a, 'shared');
    const [unrelated] = await packsOfFile(c, 'unrelated');
    for (const [victim, want] of [
      [onlyB, [b.id]],
      [shared, [a.id, b.id]],
      [unrelated, [c.id]],
    ] as const) {
      await withCopy(async (dir) => {
        const file = path.join(dir, packName(victim!));
        const buf = fs.readFileSync(file);
        buf[buf.length >> 1]! ^= 0x01;
        fs.writeFileSync(file, buf);
        const repo = await Repository.open(dir);
        try {
          const report = await repo.verify({ readData: true });
          expect(report.findings.length).toBeGreaterThan(0);
          expect(await repo.affectedBy(report.findings)).toEqual(want);
        } finally {
          await repo.close();
        }
      });
    }
  });

  it('counts a missing pack, and names nothing when the report is clean', async () => {
    const [onlyB] = await packsOfFile(b, 'only-b');
    await withCopy(async (dir) => {
      fs.rmSync(path.join(dir, packName(onlyB!)));
      const repo = await Repository.open(dir);
      try {
        const report = await repo.verify();
        expect(report.findings.map((f) => f.kind)).toContain('pack-missing');
        expect(await repo.affectedBy(report.findings)).toEqual([b.id]);
        expect(await repo.affectedBy([])).toEqual([]);
      } finally {
        await repo.close();
      }
    });
  });
});
