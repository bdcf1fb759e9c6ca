/**
 * `kova repo …` as an operator runs it: the real bin/kova.js (on the compiled
 * dist/, rebuilt first when missing or older than the sources), its exit
 * codes, its JSON shapes, and one clear line on stderr for every error.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Repository, packName } from '../src/engine/index.js';
import { type EntryDesc, compareTrees, describeTree, tempDir } from '../src/engine/testing.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin/kova.js');

/** dist/ is stale when a compiled file is missing or older than its source. */
function distIsStale(): boolean {
  const walk = (dir: string): string[] =>
    fs
      .readdirSync(dir, { withFileTypes: true })
      .flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
  for (const src of walk(path.join(ROOT, 'src'))) {
    if (!src.endsWith('.ts') || src.endsWith('.test.ts') || src.endsWith('.d.ts') || path.basename(src) === 'testing.ts') continue;
    const out = path.join(ROOT, 'dist', path.relative(path.join(ROOT, 'src'), src)).replace(/\.ts$/, '.js');
    if (!fs.existsSync(out) || fs.statSync(out).mtimeMs < fs.statSync(src).mtimeMs) return true;
  }
  return false;
}

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function kova(...args: string[]): Result {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function kovaAsync(...args: string[]): { child: ChildProcess; result: Promise<Result> } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const result = new Promise<Result>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return { child, result };
}

/** An error is one line on stderr, starting with "kova: ", and nothing on stdout. */
function expectOneLineError(r: Result, pattern: RegExp): void {
  expect(r.code, r.stderr).not.toBe(0);
  expect(r.code).not.toBeNull();
  const lines = r.stderr.split('\n').filter((l) => l.length > 0);
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^kova: /);
  expect(lines[0]).toMatch(pattern);
  expect(lines[0]).not.toMatch(/\bat .*\.(js|ts):\d+/); // no stack trace
  expect(r.stdout).toBe('');
}

function json<T>(r: Result): T {
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as T;
}

interface SnapshotJson {
  id: string;
  shortId: string;
  createdAt: string;
  label: string | null;
  parent: string | null;
  sources: string[];
  stats: { files: number; dirs: number; bytes: number; newBlobs: number; storedBytes: number };
}

let base: string;
let repoDir: string;
let src1: string;
let src2: string;
let desc1: Map<string, EntryDesc>;
let desc2: Map<string, EntryDesc>;

beforeAll(() => {
  if (distIsStale()) {
    const b = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8', timeout: 240_000 });
    if (b.status !== 0) throw new Error(`npm run build failed:\n${b.stdout}\n${b.stderr}`);
  }
  base = tempDir('kova-cli-');
  repoDir = path.join(base, 'repo');
  src1 = path.join(base, 'src1');
  src2 = path.join(base, 'src2');
  for (let i = 0; i < 30; i++) {
    fs.mkdirSync(path.join(src1, `d${i % 4}`), { recursive: true });
    fs.writeFileSync(path.join(src1, `d${i % 4}`, `f${i}`), randomBytes(1000 + i * 3000));
  }
  fs.writeFileSync(path.join(src1, 'notes.txt'), 'hello kova\n'.repeat(5000));
  fs.symlinkSync('notes.txt', path.join(src1, 'link'));
  fs.cpSync(src1, src2, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
  fs.writeFileSync(path.join(src2, 'new.bin'), randomBytes(200_000));
  desc1 = describeTree(src1);
  desc2 = describeTree(src2);
}, 300_000);

afterAll(() => {
  fs.rmSync(base, { recursive: true, force: true });
});

describe('kova repo: the normal life of a repository', () => {
  let id1: string;
  let id2: string;

  it('init creates a repository and says where', () => {
    const r = kova('repo', 'init', repoDir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^created repository [0-9a-f]{8} at ${repoDir}\\n$`));
    expect(fs.existsSync(path.join(repoDir, 'config'))).toBe(true);
  });

  it('init refuses a non-empty directory', () => {
    expectOneLineError(kova('repo', 'init', repoDir), /not empty/);
  });

  it('snapshot --json prints the snapshot with its id and stats', () => {
    const s = json<SnapshotJson>(kova('repo', 'snapshot', repoDir, src1, '--label', 'first', '--json'));
    expect(s.id).toMatch(/^[0-9a-f]{64}$/);
    expect(s.shortId).toBe(s.id.slice(0, 8));
    expect(s.label).toBe('first');
    expect(s.parent).toBeNull();
    expect(new Date(s.createdAt).toISOString()).toBe(s.createdAt);
    expect(s.sources).toEqual([src1]);
    expect(s.stats.files).toBe([...desc1.values()].filter((d) => d.type === 'file').length);
    expect(s.stats.bytes).toBe([...desc1.values()].reduce((n, d) => n + (d.type === 'file' ? d.size : 0), 0));
    expect(s.stats.newBlobs).toBeGreaterThan(0);
    id1 = s.id;
  });

  it('snapshot without --json prints just the id on stdout (and a summary on stderr)', () => {
    const r = kova('repo', 'snapshot', repoDir, src2, '--label', 'second');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^[0-9a-f]{64}\n$/);
    id2 = r.stdout.trim();
    expect(r.stderr).toContain(`snapshot ${id2.slice(0, 8)}`);
    expect(r.stderr).toMatch(/files/);
  });

  it('list --json is an array of snapshots, oldest first, with id, createdAt and label', () => {
    const list = json<SnapshotJson[]>(kova('repo', 'list', repoDir, '--json'));
    expect(Array.isArray(list)).toBe(true);
    expect(list.map((s) => s.id)).toEqual([id1, id2]);
    expect(list.map((s) => s.label)).toEqual(['first', 'second']);
    for (const s of list) {
      expect(typeof s.createdAt).toBe('string');
      expect(Number.isNaN(Date.parse(s.createdAt))).toBe(false);
    }
    expect(Date.parse(list[0]!.createdAt)).toBeLessThanOrEqual(Date.parse(list[1]!.createdAt));
    // No earlier snapshot of src2: no parent.
    expect(list[1]!.parent).toBeNull();
  });

  it('list without --json prints a table', () => {
    const r = kova('repo', 'list', repoDir);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ID\s+CREATED\s+LABEL/);
    expect(lines).toHaveLength(3);
    expect(lines[1]).toContain(id1.slice(0, 8));
    expect(lines[2]).toContain('second');
  });

  it('snapshot of the same directory again uses the previous one as parent', () => {
    const s = json<SnapshotJson & { stats: { filesReused: number } }>(kova('repo', 'snapshot', repoDir, src1, '--json'));
    expect(s.parent).toBe(id1);
    expect(s.stats.newBlobs).toBe(0);
    const d = kova('repo', 'delete', repoDir, s.id);
    expect(d.code, d.stderr).toBe(0);
  });

  it('restore writes the snapshot exactly, by full id or unique prefix', () => {
    const t1 = path.join(base, 'restore-1');
    const r = kova('repo', 'restore', repoDir, id1, t1);
    expect(r.code, r.stderr).toBe(0);
    const files = [...desc1.values()].filter((d) => d.type === 'file').length;
    expect(r.stdout).toMatch(new RegExp(`^restored ${files} files, .* to ${t1} in `));
    expect(compareTrees(desc1, describeTree(t1))).toEqual([]);
    const t2 = path.join(base, 'restore-2');
    const r2 = kova('repo', 'restore', repoDir, id2.slice(0, 10), t2);
    expect(r2.code, r2.stderr).toBe(0);
    expect(compareTrees(desc2, describeTree(t2))).toEqual([]);
  });

  it('restore into a non-empty target fails with one clear line and writes nothing', () => {
    const t = path.join(base, 'occupied');
    fs.mkdirSync(t);
    fs.writeFileSync(path.join(t, 'keep-me'), 'precious');
    expectOneLineError(kova('repo', 'restore', repoDir, id1, t), /not an empty directory/);
    expect(fs.readdirSync(t)).toEqual(['keep-me']);
    expect(fs.readFileSync(path.join(t, 'keep-me'), 'utf8')).toBe('precious');
  });

  it('an unknown id fails with one clear line, for restore and delete', () => {
    const unknown = 'f'.repeat(64);
    expectOneLineError(kova('repo', 'restore', repoDir, unknown, path.join(base, 'nowhere')), new RegExp(`snapshot ${unknown} not found`));
    expect(fs.existsSync(path.join(base, 'nowhere'))).toBe(false);
    expectOneLineError(kova('repo', 'delete', repoDir, 'deadbeef'), /snapshot deadbeef not found/);
    expectOneLineError(kova('repo', 'delete', repoDir, 'not-an-id'), /not found/);
  });

  it('stats --json describes the repository', () => {
    const s = json<Record<string, number>>(kova('repo', 'stats', repoDir, '--json'));
    expect(s.snapshots).toBe(2);
    expect(s.packs).toBeGreaterThan(0);
    expect(s.packBytes).toBeGreaterThan(0);
    expect(s.blobs).toBeGreaterThan(0);
    expect(s.rawBytes).toBeGreaterThan(0);
    const bytes = (d: Map<string, EntryDesc>): number => [...d.values()].reduce((n, e) => n + (e.type === 'file' ? e.size : 0), 0);
    expect(s.logicalBytes).toBe(bytes(desc1) + bytes(desc2));
    const plain = kova('repo', 'stats', repoDir);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/^SNAPSHOTS\s+PACKS/);
  });

  it('verify of a healthy repository exits 0', () => {
    const r = kova('repo', 'verify', repoDir, '--read-data');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^no errors: 2 snapshots, \d+ packs, \d+ blobs, .* read\n$/);
    const j = json<{ findings: unknown[]; snapshots: number }>(kova('repo', 'verify', repoDir, '--json'));
    expect(j.findings).toEqual([]);
    expect(j.snapshots).toBe(2);
  });

  it('delete then gc reclaims the space', () => {
    const before = json<Record<string, number>>(kova('repo', 'stats', repoDir, '--json'));
    const d = kova('repo', 'delete', repoDir, id2);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toBe(`deleted snapshot ${id2}\n`);
    expect(json<SnapshotJson[]>(kova('repo', 'list', repoDir, '--json')).map((s) => s.id)).toEqual([id1]);
    const g = json<{ snapshots: number; packsBefore: number; packsAfter: number; bytesBefore: number; bytesAfter: number }>(
      kova('repo', 'gc', repoDir, '--json'),
    );
    expect(g.snapshots).toBe(1);
    expect(g.bytesAfter).toBeLessThan(g.bytesBefore);
    const after = json<Record<string, number>>(kova('repo', 'stats', repoDir, '--json'));
    expect(after.packBytes).toBeLessThan(before.packBytes!);
    const plain = kova('repo', 'gc', repoDir);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/^gc: 1 snapshots, \d+ live blobs; packs/);
    // What is left is intact.
    expect(kova('repo', 'verify', repoDir, '--read-data').code).toBe(0);
    const t = path.join(base, 'restore-after-gc');
    expect(kova('repo', 'restore', repoDir, id1, t).code).toBe(0);
    expect(compareTrees(desc1, describeTree(t))).toEqual([]);
  });

  it('delete takes several ids, deletes none when one is unknown, and --gc reclaims in the same run', () => {
    const dir = path.join(base, 'multi-delete');
    expect(kova('repo', 'init', dir).code).toBe(0);
    const ids = [src1, src2, src1].map((src) => json<SnapshotJson>(kova('repo', 'snapshot', dir, src, '--json')).id);
    const listed = (): string[] => json<SnapshotJson[]>(kova('repo', 'list', dir, '--json')).map((s) => s.id);

    expectOneLineError(kova('repo', 'delete', dir, ids[0]!, 'f'.repeat(64)), /not found/);
    expect(listed()).toEqual(ids);

    const before = json<Record<string, number>>(kova('repo', 'stats', dir, '--json'));
    const d = kova('repo', 'delete', dir, ids[0]!, ids[1]!.slice(0, 12), ids[1]!, '--gc');
    expect(d.code, d.stderr).toBe(0);
    const lines = d.stdout.trim().split('\n');
    expect(lines.slice(0, 2)).toEqual([`deleted snapshot ${ids[0]}`, `deleted snapshot ${ids[1]}`]);
    expect(lines[2]).toMatch(/^gc: 1 snapshots, \d+ live blobs; packs/);
    expect(listed()).toEqual([ids[2]]);
    const after = json<Record<string, number>>(kova('repo', 'stats', dir, '--json'));
    expect(after.packBytes).toBeLessThan(before.packBytes!);
    const t = path.join(base, 'multi-delete-restore');
    expect(kova('repo', 'restore', dir, ids[2]!, t).code).toBe(0);
    expect(compareTrees(desc1, describeTree(t))).toEqual([]);
  });
});

describe('kova repo: errors', () => {
  it('a missing repository is one clear line, for every command', () => {
    const missing = path.join(base, 'no-such-repo');
    expectOneLineError(kova('repo', 'list', missing), new RegExp(`no repository at ${missing}`));
    expectOneLineError(kova('repo', 'snapshot', missing, src1), /no repository at/);
    expectOneLineError(kova('repo', 'restore', missing, 'abcd', path.join(base, 'x')), /no repository at/);
    expectOneLineError(kova('repo', 'gc', missing), /no repository at/);
    expectOneLineError(kova('repo', 'stats', missing), /no repository at/);
    expectOneLineError(kova('repo', 'verify', missing), /no repository at/);
    expect(fs.existsSync(missing)).toBe(false);
  });

  it('a missing source directory is one clear line', () => {
    const dir = path.join(base, 'err-src-repo');
    expect(kova('repo', 'init', dir).code).toBe(0);
    expectOneLineError(kova('repo', 'snapshot', dir, path.join(base, 'no-such-dir')), /no such file or directory/);
    expect(json<unknown[]>(kova('repo', 'list', dir, '--json'))).toEqual([]);
  });

  it('a usage error exits 2', () => {
    const r = kova('repo', 'frobnicate');
    expect(r.code).toBe(2);
    const r2 = kova('repo', 'restore', repoDir);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/missing required argument/);
  });

  it('a locked repository: snapshot fails naming the lock; --lock-wait waits for it', async () => {
    const dir = path.join(base, 'locked-repo');
    expect(kova('repo', 'init', dir).code).toBe(0);
    const repo = await Repository.open(dir);
    const session = await repo.beginSnapshot('snapshot');
    try {
      const r = kova('repo', 'snapshot', dir, src1);
      expectOneLineError(r, /locked/);
      expect(r.stderr).toContain(`pid ${process.pid}`);
      expectOneLineError(kova('repo', 'gc', dir), /locked/);
      expectOneLineError(kova('repo', 'delete', dir, 'abcd'), /locked/);
      // A read lock is fine meanwhile.
      expect(kova('repo', 'verify', dir).code).toBe(0);
      expect(json<unknown[]>(kova('repo', 'list', dir, '--json'))).toEqual([]);

      const waiting = kovaAsync('repo', 'snapshot', dir, src1, '--json', '--lock-wait', '30');
      await new Promise((r2) => setTimeout(r2, 1_000));
      expect(waiting.child.exitCode).toBeNull();
      await session.abort();
      const res = await waiting.result;
      expect(res.code, res.stderr).toBe(0);
      expect((JSON.parse(res.stdout) as SnapshotJson).id).toMatch(/^[0-9a-f]{64}$/);
    } finally {
      await session.abort();
      await repo.close();
    }
  });

  it('verify exits non-zero after a pack is damaged and prints the findings', async () => {
    const dir = path.join(base, 'damaged-repo');
    expect(kova('repo', 'init', dir).code).toBe(0);
    const id = json<SnapshotJson>(kova('repo', 'snapshot', dir, src1, '--json')).id;
    const repo = await Repository.open(dir);
    const packs = await repo.packFiles();
    await repo.close();
    expect(packs.length).toBeGreaterThan(0);
    const victim = packs[0]!;
    const file = path.join(dir, victim);
    const buf = fs.readFileSync(file);
    buf[Math.floor(buf.length / 3)]! ^= 0xff;
    fs.writeFileSync(file, buf);
    const packId = path.basename(victim);
    expect(packName(packId)).toBe(victim);

    const r = kova('repo', 'verify', dir, '--read-data');
    expect(r.code).toBe(1);
    const lines = r.stdout.trim().split('\n');
    expect(lines.some((l) => l.startsWith('error: ') && l.includes(packId))).toBe(true);
    expect(lines[lines.length - 1]).toMatch(/^\d+ errors?: 1 snapshots, /);
    const j = kova('repo', 'verify', dir, '--read-data', '--json');
    expect(j.code).toBe(1);
    const rep = JSON.parse(j.stdout) as { findings: Array<{ severity: string; kind: string; message: string }> };
    expect(rep.findings.some((f) => f.severity === 'error' && f.kind === 'pack-hash' && f.message.includes(packId))).toBe(true);

    // Removing the pack: structural verify (no --read-data) fails too.
    fs.rmSync(file);
    const m = kova('repo', 'verify', dir);
    expect(m.code).toBe(1);
    expect(m.stdout).toMatch(/error: pack [0-9a-f]{64} is listed in the index but missing/);
    const restore = kova('repo', 'restore', dir, id, path.join(base, 'restore-damaged'));
    expectOneLineError(restore, /missing/);
  });
});
