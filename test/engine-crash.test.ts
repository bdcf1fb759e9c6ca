/**
 * Crash safety of the snapshot engine: a child process (fixtures/engine-worker.ts)
 * runs one operation on a repository and is killed with SIGKILL somewhere in
 * the middle: after a range of delays spread over the operation's measured
 * duration, and at exact points (before/after a given storage write, after
 * each gc step). After each kill a fresh Repository.open must find:
 *   - verify --read-data: no errors (packs no index lists are fine: warnings);
 *   - every snapshot that existed before restores byte for byte, and a
 *     snapshot killed mid-way is not listed (if listed, it is complete);
 *   - a following snapshot / gc succeeds, and afterwards verify has no
 *     finding at all and tmp/ holds nothing of dead processes.
 *
 * Each kill runs on a clone of a template repository made of hard links:
 * the storage never modifies a file in place (it writes a temp file and
 * renames it), so the template is never changed, which the last test checks.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GcReport, type GcStep, Repository, MemoryStorage, isAlive, type Finding } from '../src/engine/index.js';
import { type EntryDesc, compareTrees, describeTree, tempDir } from '../src/engine/testing.js';
import type { WorkerTask, WriteKill } from './fixtures/engine-worker.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WORKER = path.join(ROOT, 'test/fixtures/engine-worker.ts');

const MiB = 1024 * 1024;
const INIT = { packSize: 1 * MiB, chunker: { minSize: 16 * 1024, avgSize: 64 * 1024, maxSize: 256 * 1024 } };
/** Kill points spread over each operation's duration. */
const DELAY_POINTS = 18;
/** Random kill points tried after the grid when too few landed mid-way. */
const EXTRA_POINTS = 24;
const GC_STEPS: GcStep[] = ['marked', 'repacked', 'indexed', 'old-index-removed', 'packs-removed'];

let base: string;
beforeAll(() => {
  // A SIGKILL loses nothing that reached the kernel, so the page cache is all a
  // crash here can test: run on tmpfs when there is one, which keeps the many
  // fsyncs from making the run slow on a busy disk.
  base = fs.existsSync('/dev/shm') ? fs.mkdtempSync('/dev/shm/kova-crash-') : tempDir('kova-crash-');
});
afterAll(() => {
  fs.rmSync(base, { recursive: true, force: true });
});

/* ---- data ------------------------------------------------------------------------ */

const WORDS = ['volume', 'snapshot', 'container', 'restart', 'kova', 'pack', 'index', 'chunk', 'tenant', 'node', 'disk', 'ok'];

function text(n: number): Buffer {
  const out: string[] = [];
  let len = 0;
  const r = randomBytes(Math.ceil(n / 4));
  for (let i = 0; len < n; i++) {
    const w = WORDS[r[i % r.length]! % WORDS.length]!;
    const s = i % 11 === 10 ? `${w}\n` : `${w} `;
    out.push(s);
    len += s.length;
  }
  return Buffer.from(out.join('').slice(0, n));
}

function put(root: string, rel: string, data: Buffer): void {
  const p = path.join(root, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, data);
}

/** A file with data, a hole, data, and a hole at the end. */
function sparse(root: string, rel: string, size: number): void {
  const p = path.join(root, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  const fd = fs.openSync(p, 'w');
  fs.writeSync(fd, randomBytes(MiB), 0, MiB, 0);
  fs.writeSync(fd, randomBytes(MiB), 0, MiB, Math.floor(size / 2));
  fs.ftruncateSync(fd, size);
  fs.closeSync(fd);
}

/** Many small files (random and text) in nested directories. */
function smallFiles(root: string, dir: string, count: number, maxSize: number): void {
  for (let i = 0; i < count; i++) {
    const size = 200 + Math.floor(Math.random() * maxSize);
    put(root, `${dir}/d${i % 17}/e${i % 5}/f${i}`, i % 3 === 0 ? text(size) : randomBytes(size));
  }
}

function cloneTree(src: string, dst: string): void {
  fs.mkdirSync(dst, { recursive: true });
  for (const e of fs.readdirSync(src, { withFileTypes: true })) {
    const s = path.join(src, e.name);
    const d = path.join(dst, e.name);
    if (e.isDirectory()) cloneTree(s, d);
    else fs.linkSync(s, d);
  }
}

function dirBytes(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) n += fs.statSync(path.join(e.parentPath, e.name)).size;
  }
  return n;
}

/* ---- the worker ------------------------------------------------------------------------ */

interface WorkerRun {
  lines: string[];
  /** The worker reported completion (before it was killed, if it was). */
  done: boolean;
  ms: number | null;
  result: unknown;
  signal: NodeJS.Signals | null;
  code: number | null;
}

function runWorker(task: WorkerTask, killAfterMs?: number): Promise<WorkerRun> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', WORKER, JSON.stringify(task)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const run: WorkerRun = { lines: [], done: false, ms: null, result: null, signal: null, code: null };
    let stderr = '';
    let timer: NodeJS.Timeout | null = null;
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      run.lines.push(line);
      if (line === 'start' && killAfterMs !== undefined) {
        if (killAfterMs <= 0) child.kill('SIGKILL');
        else timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      }
      if (line.startsWith('done ')) {
        const d = JSON.parse(line.slice(5)) as { ms: number; result: unknown };
        run.done = true;
        run.ms = d.ms;
        run.result = d.result;
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      run.code = code;
      run.signal = signal;
      // Anything but success or our SIGKILL is a failure of the operation itself.
      if (signal !== 'SIGKILL' && code !== 0) {
        const err = new Error(`worker failed (code ${code}, signal ${signal}):\n${stderr.replace(/^/gm, '  worker| ')}`);
        err.stack = err.message;
        reject(err);
      } else resolve(run);
    });
  });
}

/* ---- checks after a crash --------------------------------------------------------------- */

interface Snap {
  id: string;
  desc: Map<string, EntryDesc>;
  label: string;
  src: string;
}

interface CrashExpectation {
  /** Snapshots that must be listed and restore exactly. */
  readonly must: readonly Snap[];
  /** Snapshots that may be listed (then they must restore exactly). */
  readonly may: readonly Snap[];
  /** Descriptions of snapshots the operation may have added, by label. */
  readonly newByLabel?: ReadonlyMap<string, Map<string, EntryDesc>>;
  /** The follow-up operation to run before the final verify. */
  readonly followUp: (repo: Repository) => Promise<void>;
  /** Whether the final verify reads all data too (it always checks structure). */
  readonly finalReadData: boolean;
}

interface CrashOutcome {
  listed: string[];
  unindexedPacks: number;
  packs: string[];
}

const errorsOf = (f: readonly Finding[]): Finding[] => f.filter((x) => x.severity === 'error');
const show = (f: Finding): string => `${f.severity} ${f.kind}: ${f.message}`;

function tmpFiles(repoDir: string): string[] {
  try {
    return fs.readdirSync(path.join(repoDir, 'tmp'));
  } catch {
    return [];
  }
}

function ownerAlive(name: string): boolean {
  const [pid, start] = name.split('-');
  return pid !== undefined && start !== undefined && /^[0-9]+$/.test(pid) && isAlive(Number(pid), start);
}

/** checkAfterCrash inspects a repository a killed worker left behind. */
async function checkAfterCrash(repoDir: string, what: string, exp: CrashExpectation): Promise<CrashOutcome> {
  const repo = await Repository.open(repoDir);
  try {
    const v = await repo.verify({ readData: true });
    expect(errorsOf(v.findings).map(show).join('\n'), `${what}: verify errors`).toBe('');
    for (const f of v.findings) expect(f.kind, `${what}: unexpected warning ${f.message}`).toBe('pack-unindexed');

    const { snapshots, broken } = await repo.listSnapshotsDetailed();
    expect(broken, `${what}: broken snapshot records`).toEqual([]);
    const listed = snapshots.map((s) => s.id);
    for (const s of exp.must) expect(listed, `${what}: snapshot ${s.label} is gone`).toContain(s.id);
    const known = new Map([...exp.must, ...exp.may].map((s) => [s.id, s]));
    for (const rec of snapshots) {
      let desc = known.get(rec.id)?.desc;
      if (!desc && rec.label !== null) desc = exp.newByLabel?.get(rec.label);
      expect(desc, `${what}: unexpected snapshot ${rec.id} (${rec.label})`).toBeDefined();
      const target = path.join(path.dirname(repoDir), `restore-${rec.id.slice(0, 8)}`);
      await repo.restore(rec.id, target);
      expect(compareTrees(desc!, describeTree(target)), `${what}: snapshot ${rec.label} restored differently`).toEqual([]);
      fs.rmSync(target, { recursive: true, force: true });
    }
    const outcome: CrashOutcome = {
      listed,
      unindexedPacks: v.findings.length,
      packs: await repo.packFiles(),
    };

    // What follows the crash works, and cleans up what the crash left.
    await exp.followUp(repo);
    const after = await repo.verify({ readData: exp.finalReadData });
    expect(after.findings.map(show).join('\n'), `${what}: findings after the follow-up`).toBe('');
    expect(
      tmpFiles(repoDir).filter((n) => !ownerAlive(n)),
      `${what}: temp files of dead processes`,
    ).toEqual([]);
    expect(
      (await repo.storage.list('locks')).filter((n) => !n.endsWith('/.keep')),
      `${what}: lock files left`,
    ).toEqual([]);
    for (const s of exp.must) expect((await repo.listSnapshots()).map((x) => x.id)).toContain(s.id);
    return outcome;
  } finally {
    await repo.close();
  }
}

/**
 * Points collects the failures of many kill points, so one bad point does not
 * hide the others; the test fails at the end listing every failed point.
 */
class Points {
  readonly failures: string[] = [];
  async check(what: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      const first = (err instanceof Error ? err.message : String(err)).split('\n').slice(0, 12).join('\n');
      this.failures.push(first.startsWith(what) ? first : `${what}: ${first}`);
    }
  }
  assertNone(): void {
    expect(this.failures, `${this.failures.length} kill point(s) failed`).toEqual([]);
  }
}

function delays(totalMs: number): number[] {
  // From 0 to a little past the measured end, so both ends are covered.
  return Array.from({ length: DELAY_POINTS }, (_, i) => Math.round((i * totalMs * 1.15) / (DELAY_POINTS - 1)));
}

let caseNo = 0;
function newCase(template: string): string {
  const dir = path.join(base, `case-${++caseNo}`);
  cloneTree(template, path.join(dir, 'repo'));
  return path.join(dir, 'repo');
}

function dropCase(repoDir: string): void {
  fs.rmSync(path.dirname(repoDir), { recursive: true, force: true });
}

/* ---- snapshot --------------------------------------------------------------------------- */

describe('a snapshot killed at any point', () => {
  let template: string;
  let bigSrc: string;
  let before: Snap[];
  let bigDesc: Map<string, EntryDesc>;
  let measuredMs = 0;
  let newPacks = 0;
  let templatePacks: string[] = [];
  let completedDir: string;
  let completed: WorkerRun;

  beforeAll(async () => {
    template = path.join(base, 'snap-template');
    const srcA = path.join(base, 'snap-src-a');
    const srcB = path.join(base, 'snap-src-b');
    bigSrc = path.join(base, 'snap-src-big');
    smallFiles(srcA, 'a', 200, 30_000);
    smallFiles(srcB, 'b', 200, 40_000);
    put(srcB, 'b/large.bin', randomBytes(2 * MiB));
    // The big tree: many files, a few large ones (random, compressible, sparse),
    // a copy of B (deduplicated against S2), a hard link and a symlink.
    smallFiles(bigSrc, 'many', 1000, 40_000);
    put(bigSrc, 'large/random-1.bin', randomBytes(10 * MiB));
    put(bigSrc, 'large/random-2.bin', randomBytes(6 * MiB));
    put(bigSrc, 'large/text.log', text(8 * MiB));
    sparse(bigSrc, 'large/sparse.img', 16 * MiB);
    fs.cpSync(srcB, path.join(bigSrc, 'copy-of-b'), { recursive: true });
    fs.linkSync(path.join(bigSrc, 'large/random-2.bin'), path.join(bigSrc, 'large/hardlink.bin'));
    fs.symlinkSync('large/text.log', path.join(bigSrc, 'log'));
    expect(dirBytes(bigSrc)).toBeGreaterThan(50 * MiB);

    const repo = await Repository.init(template, INIT);
    before = [];
    for (const [label, src] of [
      ['A', srcA],
      ['B', srcB],
    ] as const) {
      const desc = describeTree(src);
      before.push({ id: (await repo.snapshot(src, { label })).id, desc, label, src });
    }
    templatePacks = await repo.packFiles();
    await repo.close();
    bigDesc = describeTree(bigSrc);

    // Calibration: one undisturbed run measures the duration and the packs written.
    completedDir = newCase(template);
    completed = await runWorker({ op: 'snapshot', repo: completedDir, source: bigSrc, label: 'big' });
    expect(completed.done).toBe(true);
    measuredMs = completed.ms!;
    const after = await Repository.open(completedDir);
    newPacks = (await after.packFiles()).length - templatePacks.length;
    await after.close();
  });

  /**
   * After a killed snapshot: retry it (the big tree; or, to keep the run short,
   * only a small one at some points: that still needs the stale lock and the
   * dead writer's temp files handled), then gc.
   */
  const expectation = (retry: 'big' | 'small' = 'big'): CrashExpectation => ({
    must: before,
    may: [],
    newByLabel: new Map([['big', bigDesc]]),
    finalReadData: false,
    followUp: async (repo) => {
      if (retry === 'big') {
        const s = await repo.snapshot(bigSrc, { label: 'big' });
        expect(s.stats.files).toBe([...bigDesc.values()].filter((d) => d.type === 'file').length);
      } else {
        const s = await repo.snapshot(before[0]!.src, { label: 'retry-small' });
        expect(s.stats.newBlobs).toBe(0);
      }
      await repo.gc();
    },
  });

  it('completes when not killed, and the result checks out', async () => {
    expect(newPacks).toBeGreaterThan(20);
    const out = await checkAfterCrash(completedDir, 'completed', expectation());
    expect(out.listed).toContain((completed.result as { id: string }).id);
    expect(out.unindexedPacks).toBe(0);
    dropCase(completedDir);
  });

  it('killed after delays spread over its duration: earlier snapshots intact, the new one absent or complete', async () => {
    expect(measuredMs).toBeGreaterThan(0);
    const points = new Points();
    let absent = 0;
    let unfinished = 0;
    // The grid follows the calibration run; on a loaded machine that run can
    // be slower than the later ones, so the grid's late points land after the
    // end. Then more points are tried at random inside the fastest run seen,
    // until a third of them landed mid-way (or give up).
    let fastest = measuredMs;
    const grid = delays(measuredMs);
    for (let i = 0; i < grid.length || (unfinished < DELAY_POINTS / 3 && i < grid.length + EXTRA_POINTS); i++) {
      const ms = i < grid.length ? grid[i]! : Math.round(fastest * (0.05 + 0.85 * Math.random()));
      const what = `snapshot killed after ${ms} ms`;
      const repoDir = newCase(template);
      const run = await runWorker({ op: 'snapshot', repo: repoDir, source: bigSrc, label: 'big' }, ms);
      if (!run.done) unfinished++;
      else if (run.ms !== null) fastest = Math.min(fastest, run.ms);
      await points.check(what, async () => {
        const out = await checkAfterCrash(repoDir, what, expectation(i % 3 === 0 ? 'big' : 'small'));
        const added = out.listed.filter((id) => !before.some((s) => s.id === id));
        if (added.length === 0) absent++;
        if (run.done) expect(added, 'a completed snapshot must be listed').toHaveLength(1);
      });
      dropCase(repoDir);
    }
    points.assertNone();
    // The kills did land mid-way, not all after the end (timing varies with load: a margin).
    expect(unfinished).toBeGreaterThanOrEqual(DELAY_POINTS / 3);
    expect(absent).toBeGreaterThanOrEqual(DELAY_POINTS / 3);
  });

  it('killed before or after exact writes: listed only once its record is written', async () => {
    expect(newPacks).toBeGreaterThan(20);
    const cases: Array<[WriteKill, boolean]> = [
      [{ prefix: 'packs/', nth: 1, when: 'before' }, false],
      [{ prefix: 'packs/', nth: 1, when: 'after' }, false],
      [{ prefix: 'packs/', nth: Math.floor(newPacks / 2), when: 'after' }, false],
      // The last pack or so: how many packs a snapshot writes varies by one
      // with the order files are read in, so aim one short of the count seen.
      [{ prefix: 'packs/', nth: newPacks - 1, when: 'after' }, false],
      [{ prefix: 'index/', nth: 1, when: 'before' }, false],
      [{ prefix: 'index/', nth: 1, when: 'after' }, false],
      [{ prefix: 'snapshots/', nth: 1, when: 'before' }, false],
      [{ prefix: 'snapshots/', nth: 1, when: 'after' }, true],
    ];
    const points = new Points();
    for (const [kill, listed] of cases) {
      const what = `snapshot killed ${kill.when} write ${kill.nth} of ${kill.prefix}`;
      const repoDir = newCase(template);
      const run = await runWorker({ op: 'snapshot', repo: repoDir, source: bigSrc, label: 'big', killOnWrite: kill });
      await points.check(what, async () => {
        expect(run.signal).toBe('SIGKILL');
        expect(run.done).toBe(false);
        // The killed worker's lock file is still there; it must not block anyone.
        expect(fs.readdirSync(path.join(repoDir, 'locks')).filter((n) => n !== '.keep')).toHaveLength(1);
        const out = await checkAfterCrash(repoDir, what, expectation());
        expect(out.listed.length).toBe(before.length + (listed ? 1 : 0));
        // Packs written before the kill are complete files, listed by no index yet.
        if (kill.prefix === 'packs/' && kill.when === 'after') expect(out.unindexedPacks).toBeGreaterThanOrEqual(1);
        if (kill.prefix === 'packs/' && kill.when === 'before' && kill.nth === 1) expect(out.unindexedPacks).toBe(0);
        // Before the index is written every new pack is unindexed; after, none is.
        if (kill.prefix === 'index/' && kill.when === 'before') expect(out.unindexedPacks).toBeGreaterThan(newPacks / 2);
        if (kill.prefix === 'snapshots/' || (kill.prefix === 'index/' && kill.when === 'after')) expect(out.unindexedPacks).toBe(0);
      });
      dropCase(repoDir);
    }
    points.assertNone();
  });

  it('never changed the template (no file is modified in place)', async () => {
    const repo = await Repository.open(template);
    expect((await repo.verify({ readData: true })).findings).toEqual([]);
    expect(await repo.packFiles()).toEqual(templatePacks);
    expect((await repo.listSnapshots()).map((s) => s.id).sort()).toEqual(before.map((s) => s.id).sort());
    await repo.close();
  });
});

/* ---- gc -------------------------------------------------------------------------------- */

interface GcFixture {
  template: string;
  all: Snap[];
  deleted: Snap[];
  kept: Snap[];
}

/** Four snapshots of a tree that changes between them, so packs mix live and dead data. */
async function makeGcFixture(name: string): Promise<GcFixture> {
  const template = path.join(base, `${name}-template`);
  const src = path.join(base, `${name}-src`);
  smallFiles(src, 'files', 400, 30_000);
  put(src, 'big/one.bin', randomBytes(2 * MiB));
  put(src, 'big/two.log', text(2 * MiB));
  const repo = await Repository.init(template, { ...INIT, packSize: 512 * 1024 });
  const all: Snap[] = [];
  for (let gen = 0; gen < 4; gen++) {
    if (gen > 0) {
      // Rewrite about a third of the small files, one large file, add some.
      const files = fs.readdirSync(path.join(src, 'files'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
      for (const [i, e] of files.entries()) {
        if ((i + gen) % 3 === 0) fs.writeFileSync(path.join(e.parentPath, e.name), randomBytes(200 + Math.floor(Math.random() * 30_000)));
      }
      put(src, gen % 2 ? 'big/one.bin' : 'big/two.log', gen % 2 ? randomBytes(2 * MiB) : text(2 * MiB));
      smallFiles(src, `gen${gen}`, 40, 20_000);
    }
    const desc = describeTree(src);
    all.push({ id: (await repo.snapshot(src, { label: `gen${gen}` })).id, desc, label: `gen${gen}`, src });
  }
  await repo.close();
  return { template, all, deleted: all.slice(0, 2), kept: all.slice(2) };
}

function gcSuite(title: string, opts: { preDeleted: boolean; repackBelow?: number; expectRepack: boolean }): void {
  describe(title, () => {
    let fx: GcFixture;
    let template: string;
    let measuredMs = 0;
    let finalPacks: string[] = [];
    let initialPacks: string[] = [];
    let completedDir: string;
    let completed: WorkerRun;

    const task = (extra: Partial<Extract<WorkerTask, { op: 'gc' }>> = {}): WorkerTask => ({
      op: 'gc',
      repo: '',
      deletes: opts.preDeleted ? [] : fx.deleted.map((s) => s.id),
      ...(opts.repackBelow !== undefined ? { repackBelow: opts.repackBelow } : {}),
      ...extra,
    });
    const expectation = (): CrashExpectation => ({
      must: fx.kept,
      // Deletes that had not happened yet when the worker was killed.
      may: opts.preDeleted ? [] : fx.deleted,
      finalReadData: true,
      followUp: async (repo) => {
        await repo.gc(opts.repackBelow !== undefined ? { repackBelow: opts.repackBelow } : {});
      },
    });

    beforeAll(async () => {
      fx = await makeGcFixture(title.replace(/\W+/g, '-'));
      template = fx.template;
      if (opts.preDeleted) {
        template = `${fx.template}-deleted`;
        cloneTree(fx.template, template);
        const repo = await Repository.open(template);
        for (const s of fx.deleted) await repo.deleteSnapshot(s.id);
        await repo.close();
      }
      const repo = await Repository.open(template);
      initialPacks = await repo.packFiles();
      await repo.close();

      // Calibration: one undisturbed run measures the duration.
      completedDir = newCase(template);
      completed = await runWorker({ ...task(), repo: completedDir } as WorkerTask);
      expect(completed.done).toBe(true);
      measuredMs = completed.ms!;
      const after = await Repository.open(completedDir);
      finalPacks = await after.packFiles();
      await after.close();
    });

    it('completes when not killed, and reclaims space', async () => {
      const repoDir = completedDir;
      const report = completed.result as GcReport;
      expect(report.snapshots).toBe(fx.kept.length);
      expect(report.bytesAfter).toBeLessThan(report.bytesBefore);
      if (opts.expectRepack) expect(report.packsRepacked).toBeGreaterThan(5);
      const out = await checkAfterCrash(repoDir, 'completed gc', { ...expectation(), may: [] });
      expect(out.unindexedPacks).toBe(0);
      expect(out.packs).toEqual(finalPacks);
      expect(finalPacks).not.toEqual(initialPacks);
      dropCase(repoDir);
    });

    it('killed after delays spread over its duration: every kept snapshot restores', async () => {
      expect(measuredMs).toBeGreaterThan(0);
      const points = new Points();
      let midway = 0;
      let unfinished = 0;
      // The grid may step over gc's short writing phase; then more points are
      // tried at random inside the run, until one lands there (or give up).
      const extra = (): number => Math.round(measuredMs * (0.2 + 0.8 * Math.random()));
      const grid = delays(measuredMs);
      for (let i = 0; i < grid.length || (midway === 0 && i < grid.length + EXTRA_POINTS); i++) {
        const ms = i < grid.length ? grid[i]! : extra();
        const what = `gc killed after ${ms} ms`;
        const repoDir = newCase(template);
        const run = await runWorker({ ...task(), repo: repoDir } as WorkerTask, ms);
        if (!run.done) unfinished++;
        const packs = (await fs.promises.readdir(path.join(repoDir, 'packs'), { recursive: true })).filter((n) => n.includes('/'));
        const same = (a: string[], b: string[]): boolean => a.length === b.length && a.every((x) => b.includes(x));
        const now = packs.map((n) => `packs/${n}`);
        if (!same(now, initialPacks) && !same(now, finalPacks)) midway++;
        await points.check(what, async () => {
          await checkAfterCrash(repoDir, what, expectation());
        });
        dropCase(repoDir);
      }
      points.assertNone();
      expect(unfinished).toBeGreaterThanOrEqual(DELAY_POINTS / 3);
      expect(midway).toBeGreaterThanOrEqual(1);
    });

    it('killed right after each gc step: every kept snapshot restores', async () => {
      const points = new Points();
      for (const step of GC_STEPS) {
        const what = `gc killed after step ${step}`;
        const repoDir = newCase(template);
        const run = await runWorker({ ...task({ killAfterStep: step }), repo: repoDir } as WorkerTask);
        await points.check(what, async () => {
          expect(run.signal).toBe('SIGKILL');
          expect(run.lines).toContain(`step ${step}`);
          const out = await checkAfterCrash(repoDir, what, expectation());
          // The deletes ran before gc started: the deleted snapshots are gone.
          expect([...out.listed].sort()).toEqual(fx.kept.map((s) => s.id).sort());
        });
        dropCase(repoDir);
      }
      points.assertNone();
    });

    it('killed in the middle of writing its new packs and index', async () => {
      const cases: WriteKill[] = [
        { prefix: 'packs/', nth: 1, when: 'after' },
        { prefix: 'packs/', nth: 3, when: 'before' },
        { prefix: 'index/', nth: 1, when: 'before' },
        { prefix: 'index/', nth: 1, when: 'after' },
      ];
      const points = new Points();
      for (const kill of cases) {
        if (!opts.expectRepack && kill.prefix === 'packs/') continue;
        const what = `gc killed ${kill.when} write ${kill.nth} of ${kill.prefix}`;
        const repoDir = newCase(template);
        const run = await runWorker({ ...task({ killOnWrite: kill }), repo: repoDir } as WorkerTask);
        await points.check(what, async () => {
          expect(run.signal).toBe('SIGKILL');
          await checkAfterCrash(repoDir, what, expectation());
        });
        dropCase(repoDir);
      }
      points.assertNone();
    });

    it('never changed the template (no file is modified in place)', async () => {
      const repo = await Repository.open(template);
      const v = await repo.verify({ readData: true });
      expect(v.findings).toEqual([]);
      expect(await repo.packFiles()).toEqual(initialPacks);
      await repo.close();
    });
  });
}

gcSuite('delete + gc killed at any point', { preDeleted: false, expectRepack: false });
gcSuite('gc with repacking killed at any point', { preDeleted: true, repackBelow: 0.95, expectRepack: true });

/* ---- a failing write at every point (in process) ------------------------------------------- */

/**
 * The same guarantees when an operation stops because a write fails (disk
 * full) instead of a kill: MemoryStorage fails every write from the n-th on,
 * for every n the operation reaches. Exhaustive, and cheap in memory. A
 * snapshot reports the failure as DISK_FULL and removes what it wrote.
 */
describe('an operation whose writes start failing at any point', () => {
  const MEM_INIT = { packSize: 16 * 1024, chunker: { minSize: 1024, avgSize: 4096, maxSize: 16 * 1024 } };
  let src: string;

  beforeAll(() => {
    src = path.join(base, 'failing-src');
    smallFiles(src, 'f', 40, 10_000);
    put(src, 'big.bin', randomBytes(120 * 1024));
  });

  function cloneStorage(s: MemoryStorage): MemoryStorage {
    const c = new MemoryStorage();
    for (const [k, v] of s.files) c.files.set(k, Buffer.from(v));
    return c;
  }

  const lockNames = async (s: MemoryStorage): Promise<string[]> => (await s.list('locks')).filter((n) => !n.endsWith('/.keep'));

  /**
   * runFailing runs `op` with writes failing from the n-th on. It returns
   * whether the operation failed, and how many writes it still attempted
   * after it had returned: a failed operation has released its lock, so
   * anything it still writes lands under another operation's lock.
   */
  async function runFailing(
    storage: MemoryStorage,
    n: number,
    op: (r: Repository) => Promise<unknown>,
    code = 'ENOSPC',
  ): Promise<{ failed: boolean; late: number }> {
    storage.failWritesFrom = storage.writes + n;
    try {
      await op(await Repository.openStorage(storage));
      return { failed: false, late: 0 };
    } catch (err) {
      expect((err as NodeJS.ErrnoException).code).toBe(code);
      const attempted = storage.writes;
      await new Promise((r) => setTimeout(r, 150));
      return { failed: true, late: storage.writes - attempted };
    } finally {
      storage.failWritesFrom = null;
    }
  }

  /** checkMem: like checkAfterCrash; snapshots listed but not in `known` are matched by label. */
  async function checkMem(
    storage: MemoryStorage,
    what: string,
    must: readonly Snap[],
    known: readonly Snap[],
    followUp: (r: Repository) => Promise<void>,
  ): Promise<string[]> {
    const repo = await Repository.openStorage(storage);
    const v = await repo.verify({ readData: true });
    expect(errorsOf(v.findings).map(show).join('\n'), `${what}: verify errors`).toBe('');
    const listed = await repo.listSnapshots();
    for (const s of must)
      expect(
        listed.map((x) => x.id),
        `${what}: ${s.label} is gone`,
      ).toContain(s.id);
    for (const rec of listed) {
      const snap = known.find((k) => k.id === rec.id) ?? known.find((k) => k.label === rec.label && !must.includes(k));
      expect(snap, `${what}: unexpected snapshot ${rec.id} (${rec.label})`).toBeDefined();
      const target = path.join(base, `mem-restore-${++caseNo}`);
      await repo.restore(rec.id, target);
      expect(compareTrees(snap!.desc, describeTree(target)), `${what}: ${snap!.label} restored differently`).toEqual([]);
      fs.rmSync(target, { recursive: true, force: true });
    }
    expect(await lockNames(storage), `${what}: lock files left`).toEqual([]);
    await followUp(repo);
    const after = await repo.verify({ readData: true });
    expect(after.findings.map(show).join('\n'), `${what}: findings after the follow-up`).toBe('');
    return listed.map((x) => x.label ?? '');
  }

  it('snapshot: earlier snapshots intact, the new one listed only if complete', async () => {
    const seed = new MemoryStorage();
    const repo = await Repository.create(seed, MEM_INIT);
    const firstSrc = path.join(base, 'failing-first');
    smallFiles(firstSrc, 'g', 20, 8_000);
    const first: Snap = { id: '', desc: describeTree(firstSrc), label: 'first', src: firstSrc };
    first.id = (await repo.snapshot(firstSrc, { label: 'first' })).id;
    const newSnap: Snap = { id: '', desc: describeTree(src), label: 'new', src };

    // How many writes a complete snapshot does. Files are read concurrently, so
    // which blobs share a pack (and so the number of packs) may vary a little.
    const totals: number[] = [];
    for (let i = 0; i < 3; i++) {
      const probe = cloneStorage(seed);
      await (await Repository.openStorage(probe)).snapshot(src, { label: 'new' });
      totals.push(probe.writes);
    }
    const least = Math.min(...totals);
    const most = Math.max(...totals);
    expect(least).toBeGreaterThan(10);

    // A run may need a write fewer or more than all three probes did (forty
    // runs over one volume spread over two adjacent counts), so near `least`
    // and past `most` a run may fail or not; some run must get through every
    // write. Well below `least`, every run must fail.
    const points = new Points();
    let completed = 0;
    for (let n = 1; n <= most + 3; n++) {
      const what = `snapshot failing from write ${n}`;
      const storage = cloneStorage(seed);
      const { failed, late } = await runFailing(storage, n, (r) => r.snapshot(src, { label: 'new' }), 'DISK_FULL');
      if (!failed) completed++;
      await points.check(`${what}: writes after it returned`, async () => expect(late).toBe(0));
      await points.check(what, async () => {
        if (n < least - 2) expect(failed).toBe(true);
        // A failed snapshot removed its packs and index again.
        if (failed)
          expect([...(await storage.list('packs')), ...(await storage.list('index'))]).toEqual([
            ...(await seed.list('packs')),
            ...(await seed.list('index')),
          ]);
        const labels = await checkMem(storage, what, [first], [first, newSnap], async (x) => {
          await x.snapshot(src, { label: 'again' });
          await x.gc();
        });
        expect(labels.includes('new')).toBe(!failed);
      });
    }
    points.assertNone();
    expect(completed, 'no run got through every write').toBeGreaterThan(0);
  });

  it('delete + gc with repacking: every kept snapshot restores', async () => {
    const seed = new MemoryStorage();
    const repo = await Repository.create(seed, MEM_INIT);
    const snaps: Snap[] = [];
    const work = path.join(base, 'failing-gc-src');
    fs.cpSync(src, work, { recursive: true });
    for (let gen = 0; gen < 3; gen++) {
      if (gen > 0) {
        const files = fs.readdirSync(work, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
        for (const [i, e] of files.entries())
          if ((i + gen) % 2 === 0) fs.writeFileSync(path.join(e.parentPath, e.name), randomBytes(3_000 + i * 50));
      }
      const desc = describeTree(work);
      snaps.push({ id: (await repo.snapshot(work, { label: `gen${gen}` })).id, desc, label: `gen${gen}`, src: work });
    }
    const [old, ...kept] = snaps as [Snap, ...Snap[]];
    const op = async (r: Repository): Promise<GcReport> => {
      await r.deleteSnapshot(old.id);
      return r.gc({ repackBelow: 0.9 });
    };
    const probe = cloneStorage(seed);
    const report = await op(await Repository.openStorage(probe));
    expect(report.packsRepacked).toBeGreaterThan(3);
    const total = probe.writes;

    const points = new Points();
    for (let n = 1; n <= total + 1; n++) {
      const what = `delete + gc failing from write ${n}`;
      const storage = cloneStorage(seed);
      const { failed, late } = await runFailing(storage, n, op);
      await points.check(`${what}: writes after it returned`, async () => expect(late).toBe(0));
      await points.check(what, async () => {
        expect(failed).toBe(n <= total);
        await checkMem(storage, what, kept, snaps, async (x) => {
          await x.gc({ repackBelow: 0.9 });
        });
      });
    }
    points.assertNone();
  });
});

/* ---- gc and the packs it writes ------------------------------------------------------------ */

describe('gc repacking into a pack that already exists', () => {
  it('keeps a pack whose repacked content comes out byte for byte the same (tiny files, default settings)', async () => {
    // Blobs smaller than a trailer entry make a pack mostly trailer: gc repacks
    // it although every blob is live, and the result is the same pack again.
    const src = path.join(base, 'tiny-src');
    fs.mkdirSync(src);
    for (let i = 0; i < 400; i++) fs.writeFileSync(path.join(src, `f${i}`), randomBytes(30));
    const desc = describeTree(src);
    const repo = await Repository.create(new MemoryStorage(), { packSize: 4096 });
    const snap = await repo.snapshot(src);
    const report = await repo.gc();
    expect(report.snapshots).toBe(1);
    const v = await repo.verify({ readData: true });
    expect(v.findings.map(show).join('\n')).toBe('');
    const target = path.join(base, 'tiny-restore');
    await repo.restore(snap.id, target);
    expect(compareTrees(desc, describeTree(target))).toEqual([]);
  });

  it('keeps the packs an interrupted gc already wrote when the next gc writes them again', async () => {
    const src = path.join(base, 'rewrite-src');
    smallFiles(src, 'x', 80, 20_000);
    const repo = await Repository.create(new MemoryStorage(), {
      packSize: 16 * 1024,
      chunker: { minSize: 1024, avgSize: 4096, maxSize: 16 * 1024 },
    });
    const gone = await repo.snapshot(src);
    for (const e of fs
      .readdirSync(src, { recursive: true, withFileTypes: true })
      .filter((x) => x.isFile())
      .filter((_, i) => i % 2 === 0)) {
      fs.writeFileSync(path.join(e.parentPath, e.name), randomBytes(5_000));
    }
    const desc = describeTree(src);
    const keep = await repo.snapshot(src);
    await repo.deleteSnapshot(gone.id);
    // The first gc stops after writing its new packs (as if killed there).
    await expect(
      repo.gc({
        repackBelow: 0.9,
        afterStep: (step) => {
          if (step === 'repacked') throw new Error('interrupted');
        },
      }),
    ).rejects.toThrow('interrupted');
    await repo.gc({ repackBelow: 0.9 });
    const v = await repo.verify({ readData: true });
    expect(v.findings.map(show).join('\n')).toBe('');
    const target = path.join(base, 'rewrite-restore');
    await repo.restore(keep.id, target);
    expect(compareTrees(desc, describeTree(target))).toEqual([]);
  });
});
