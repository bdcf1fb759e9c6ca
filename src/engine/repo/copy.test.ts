/**
 * copySnapshots between two local repositories: only missing blobs are sent,
 * and a copy with checkDestination repairs damaged and missing packs so
 * that the destination verifies clean, even when a repaired pack comes out
 * byte for byte as the damaged one did (and so gets its name back).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareTrees, describeTree, prng, tempDir } from '../testing.js';
import { verifyRepository } from '../verify/verify.js';
import { copySnapshots } from './copy.js';
import { packName } from './master-index.js';
import { Repository } from './repository.js';

let work: string;
let vol: string;

beforeAll(() => {
  work = tempDir('kova-copy-');
  vol = path.join(work, 'vol');
  fs.mkdirSync(vol);
  for (let i = 0; i < 12; i++) fs.writeFileSync(path.join(vol, `f${i}`), prng(i + 1, 300 * 1024));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

async function pair(name: string): Promise<{ src: Repository; dst: Repository; snap: string }> {
  const src = await Repository.init(path.join(work, `${name}-src`), { packSize: 256 * 1024 });
  const snap = (await src.snapshot(vol)).id;
  const dst = await Repository.init(path.join(work, `${name}-dst`), { packSize: 256 * 1024 });
  return { src, dst, snap };
}

describe('copySnapshots', () => {
  it('sends everything once, then nothing', async () => {
    const { src, dst, snap } = await pair('once');
    const first = await copySnapshots(src, dst);
    expect(first.copied).toEqual([snap]);
    expect(first.blobsSent).toBeGreaterThan(12);
    const again = await copySnapshots(src, dst);
    expect(again).toMatchObject({ copied: [], present: [snap], blobsSent: 0 });
    await Promise.all([src.close(), dst.close()]);
  });

  it('repairs a damaged and a missing pack with checkDestination, leaving every pack indexed', async () => {
    const { src, dst, snap } = await pair('repair');
    // Checkpoint after every pack, so the repaired packs are indexed before the old index files are rewritten.
    await copySnapshots(src, dst, { checkpointPacks: 1 });
    const packs = (await dst.packFiles()).map((n) => n.slice(n.lastIndexOf('/') + 1)).sort();
    expect(packs.length).toBeGreaterThanOrEqual(3);
    const damaged = path.join(dst.location, packName(packs[0]!));
    const buf = fs.readFileSync(damaged);
    buf[buf.length >> 1]! ^= 0xff;
    fs.writeFileSync(damaged, buf);
    fs.rmSync(path.join(dst.location, packName(packs[1]!)));
    const before = await verifyRepository(dst, { readData: true });
    expect(before.findings.filter((f) => f.severity === 'error').length).toBeGreaterThan(0);

    const report = await copySnapshots(src, dst, { checkDestination: true, checkpointPacks: 1 });
    expect(report.packsRepaired).toBe(2);
    const after = await verifyRepository(dst, { readData: true });
    expect(after.findings).toEqual([]);
    const out = path.join(work, 'repair-out');
    await dst.restore(snap, out);
    expect(compareTrees(describeTree(vol), describeTree(out))).toEqual([]);
    await Promise.all([src.close(), dst.close()]);
  });
});
