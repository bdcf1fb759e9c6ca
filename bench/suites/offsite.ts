// Offsite suite: copying snapshots to S3-compatible object storage and
// recovering from it, side by side with restic, on one benchmark volume
// (default `mixed`; `--volume` picks another).
//
// The bucket is s3rver in its own process over HTTPS on loopback (restic
// needs HTTPS there; kova gets the same TLS cost). Steps, each cold-cache
// under GNU time (bench/lib/measure.ts):
//   kova:   snapshot to a local repository, `kova repo copy` to the bucket;
//           after the volume's ~1% mutation, an incremental snapshot and its
//           copy (bytes the bucket grew by against the new data the
//           snapshot holds: goal at most 1.05x);
//   restic: `restic backup` straight to the bucket (first and incremental),
//           and `restic copy` of the same two snapshots from a local restic
//           repository;
//   recovery: the newest snapshot restored straight from the bucket, the
//           bucket pulled back into an empty local repository (what a
//           recovery onto a new node does) then restored, against a restore
//           from the local repository and `restic restore` from the bucket.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { VOLUMES, type VolumeName } from '../lib/layout.js';
import { type Measurement, measure, requireGnuTime, sh } from '../lib/measure.js';
import { bytes } from '../lib/report.js';
import type { Suite, SuiteOptions } from '../lib/suite.js';
import { preparePristineVolume } from '../lib/volume.js';

const RESTIC = '/usr/bin/restic';
const BUCKET = 'bench';

interface Step {
  tool: 'kova' | 'restic';
  step: string;
  m: Measurement;
  /** Bytes the bucket grew by during the step (objects as stored). */
  bucketBytes?: number;
  note?: string;
}

/** Bytes of the objects s3rver holds under `prefix` of the bucket. */
function bucketBytes(dir: string, prefix: string): number {
  let total = 0;
  const walk = (d: string): void => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('._S3rver_object')) total += statSync(p).size;
    }
  };
  walk(join(dir, BUCKET, prefix));
  return total;
}

/** s3rver over HTTPS in a child process; resolves once it listens. */
async function startBucket(work: string, repoRoot: string): Promise<{ endpoint: string; cert: string; dir: string; child: ChildProcess }> {
  const dir = join(work, 's3rver');
  mkdirSync(dir, { recursive: true });
  const key = join(work, 'tls.key');
  const cert = join(work, 'tls.crt');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  const script = `
    const fs = require('fs');
    const S3rver = require(${JSON.stringify(join(repoRoot, 'node_modules', 's3rver'))});
    new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: ${JSON.stringify(dir)},
      key: fs.readFileSync(${JSON.stringify(key)}), cert: fs.readFileSync(${JSON.stringify(cert)}),
      configureBuckets: [{ name: ${JSON.stringify(BUCKET)} }] })
      .run().then(({ port }) => console.log('PORT ' + port));`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /PORT (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`s3rver exited with ${code}`)));
  });
  return { endpoint: `https://127.0.0.1:${port}`, cert, dir, child };
}

/** The JSON object a `--json` command printed: its whole output, or its last line that is one. */
function lastJson(stdout: string): Record<string, unknown> {
  for (const text of [stdout.trim(), ...stdout.trim().split('\n').reverse()]) {
    try {
      const v: unknown = JSON.parse(text);
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch {
      // not JSON
    }
  }
  throw new Error(`no JSON in: ${stdout.slice(0, 300)}`);
}

export const offsiteSuite: Suite = {
  description: 'copy to S3 (s3rver over HTTPS) and recovery from it, against restic backup, restic copy and restic restore',
  async run(opts: SuiteOptions): Promise<number> {
    requireGnuTime();
    const name: VolumeName = opts.volumes.length === VOLUMES.length ? 'mixed' : opts.volumes[0]!;
    const run = join(opts.workDir, 'offsite-run');
    rmSync(run, { recursive: true, force: true });
    mkdirSync(run, { recursive: true });
    const volume = preparePristineVolume(opts.workDir, opts.scale, (m) => console.log(m), name);
    const bucket = await startBucket(run, opts.repoRoot);
    const keyFile = join(run, 'offsite.key');
    writeFileSync(keyFile, execFileSync('openssl', ['rand', '-base64', '32']), { mode: 0o600 });
    const kovaEnv = {
      NODE_EXTRA_CA_CERTS: bucket.cert,
      KOVA_S3_ENDPOINT: bucket.endpoint,
      KOVA_OFFSITE_KEY_FILE: keyFile,
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_REGION: 'us-east-1',
    };
    const resticEnv = {
      RESTIC_PASSWORD: 'bench',
      RESTIC_FROM_PASSWORD: 'bench',
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
    };
    const kova = `${sh(process.execPath)} ${sh(join(opts.repoRoot, 'bin', 'kova.js'))} repo`;
    const local = join(run, 'kova-local');
    const remote = `s3://${BUCKET}/kova`;
    const resticRemote = `s3:${bucket.endpoint}/${BUCKET}/restic`;
    const resticCopy = `s3:${bucket.endpoint}/${BUCKET}/restic-copy`;
    const resticLocal = join(run, 'restic-local');
    const rc = (repo: string) => `--repo ${sh(repo)} --cache-dir ${sh(join(run, 'restic-cache'))} --cacert ${sh(bucket.cert)}`;
    /** Runs restic (setup, not measured) with the cache of this run. */
    const resticSetup = (...args: string[]): void => {
      execFileSync(RESTIC, [...args, '--cache-dir', join(run, 'restic-cache')], { env: { ...process.env, ...resticEnv }, stdio: 'ignore' });
    };
    const resticLocalBackup = (): void =>
      resticSetup('backup', '--repo', resticLocal, '--host', 'bench', '--compression', 'auto', volume.root);
    const steps: Step[] = [];
    const step = async (tool: Step['tool'], label: string, script: string, env: Record<string, string>, prefix?: string) => {
      const before = prefix ? bucketBytes(bucket.dir, prefix) : 0;
      const { m, stdout } = await measure({ script, env }, run);
      const s: Step = { tool, step: label, m, ...(prefix ? { bucketBytes: bucketBytes(bucket.dir, prefix) - before } : {}) };
      steps.push(s);
      console.log(
        `[${tool}] ${label}: ${m.wallS.toFixed(2)} s (CPU ${(m.userS + m.sysS).toFixed(1)} s, ${(m.maxRssKiB / 1024).toFixed(0)} MiB)${s.bucketBytes !== undefined ? `, bucket +${bytes(s.bucketBytes)}` : ''}`,
      );
      return stdout;
    };
    let code = 0;
    try {
      volume.unmutate();
      // kova: a local snapshot, then its copy.
      execFileSync(process.execPath, [join(opts.repoRoot, 'bin', 'kova.js'), 'repo', 'init', local], { stdio: 'ignore' });
      const first = lastJson(await step('kova', 'local snapshot', `${kova} snapshot ${sh(local)} ${sh(volume.root)} --json`, kovaEnv));
      await step('kova', 'copy first snapshot', `${kova} copy ${sh(local)} ${remote} --json`, kovaEnv, 'kova');
      // restic: backup straight to the bucket; a local repository for restic copy.
      resticSetup('init', '--repo', resticRemote, '--cacert', bucket.cert, '--repository-version', '2');
      await step(
        'restic',
        'backup first to bucket',
        `${RESTIC} backup ${rc(resticRemote)} --host bench --compression auto ${sh(volume.root)}`,
        resticEnv,
        'restic',
      );
      resticSetup('init', '--repo', resticLocal, '--repository-version', '2');
      resticLocalBackup();
      resticSetup(
        'init',
        '--repo',
        resticCopy,
        '--cacert',
        bucket.cert,
        '--repository-version',
        '2',
        '--copy-chunker-params',
        '--from-repo',
        resticLocal,
      );
      await step(
        'restic',
        'copy first snapshot',
        `${RESTIC} copy ${rc(resticCopy)} --from-repo ${sh(resticLocal)}`,
        resticEnv,
        'restic-copy',
      );

      // The ~1% change, then the incremental of each.
      const mutation = volume.mutate();
      console.log(`mutation: ${JSON.stringify(mutation)}`);
      const second = lastJson(
        await step(
          'kova',
          'local incremental',
          `${kova} snapshot ${sh(local)} ${sh(volume.root)} --json --parent ${sh(String(first.id))}`,
          kovaEnv,
        ),
      );
      const incr = await step('kova', 'copy incremental', `${kova} copy ${sh(local)} ${remote} --json`, kovaEnv, 'kova');
      const report = lastJson(incr);
      const stats = second.stats as { storedBytes: number; newBytes: number };
      const grew = steps.at(-1)!.bucketBytes!;
      steps.at(-1)!.note =
        `new data stored ${bytes(stats.storedBytes)} (raw ${bytes(stats.newBytes)}); sent ${bytes(Number(report.bytesSent))}; bucket grew ${(grew / stats.storedBytes).toFixed(3)}x the new data (goal <= 1.05x)`;
      console.log(steps.at(-1)!.note);
      await step(
        'restic',
        'backup incremental to bucket',
        `${RESTIC} backup ${rc(resticRemote)} --host bench --compression auto ${sh(volume.root)}`,
        resticEnv,
        'restic',
      );
      resticLocalBackup();
      await step('restic', 'copy incremental', `${RESTIC} copy ${rc(resticCopy)} --from-repo ${sh(resticLocal)}`, resticEnv, 'restic-copy');

      // Recovery of the newest snapshot.
      const id = String(second.id);
      await step('kova', 'restore from local repository', `${kova} restore ${sh(local)} ${sh(id)} ${sh(join(run, 'r-local'))}`, kovaEnv);
      rmSync(join(run, 'r-local'), { recursive: true, force: true });
      await step('kova', 'restore straight from bucket', `${kova} restore ${remote} ${sh(id)} ${sh(join(run, 'r-remote'))}`, kovaEnv);
      rmSync(join(run, 'r-remote'), { recursive: true, force: true });
      await step(
        'kova',
        'recover: pull bucket to new node + restore',
        `${kova} copy ${remote} ${sh(join(run, 'kova-new'))} --json && ${kova} restore ${sh(join(run, 'kova-new'))} ${sh(id)} ${sh(join(run, 'r-new'))}`,
        kovaEnv,
      );
      rmSync(join(run, 'r-new'), { recursive: true, force: true });
      await step(
        'restic',
        'restore from bucket',
        `${RESTIC} restore latest ${rc(resticRemote)} --target ${sh(join(run, 'r-restic'))}`,
        resticEnv,
      );
      rmSync(join(run, 'r-restic'), { recursive: true, force: true });

      console.log(`\n## Offsite benchmark (volume ${name}, scale ${opts.scale}, s3rver over HTTPS on loopback)\n`);
      console.log('| tool | step | wall | CPU | peak RSS | bucket grew | throughput |');
      console.log('|---|---|---|---|---|---|---|');
      for (const s of steps) {
        const tput = s.bucketBytes ? `${bytes(s.bucketBytes / s.m.wallS)}/s` : '';
        console.log(
          `| ${s.tool} | ${s.step} | ${s.m.wallS.toFixed(2)} s | ${(s.m.userS + s.m.sysS).toFixed(1)} s | ${(s.m.maxRssKiB / 1024).toFixed(0)} MiB | ${s.bucketBytes !== undefined ? bytes(s.bucketBytes) : ''} | ${tput} |`,
        );
      }
      const ratio = (a: string, b: string) => {
        const x = steps.find((s) => s.step === a && s.tool === 'kova');
        const y = steps.find((s) => s.step === b && s.tool === 'restic');
        return x && y ? `${(x.m.wallS / y.m.wallS).toFixed(2)}x` : 'n/a';
      };
      console.log(
        `\nkova copy / restic backup to bucket: first ${ratio('copy first snapshot', 'backup first to bucket')}, incremental ${ratio('copy incremental', 'backup incremental to bucket')}`,
      );
      console.log(
        `kova copy / restic copy: first ${ratio('copy first snapshot', 'copy first snapshot')}, incremental ${ratio('copy incremental', 'copy incremental')}`,
      );
      console.log(
        `kova recover (pull + restore) / restic restore from bucket: ${ratio('recover: pull bucket to new node + restore', 'restore from bucket')}`,
      );
      for (const s of steps) if (s.note) console.log(s.note);
      const out = join(opts.workDir, `offsite-results-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
      writeFileSync(out, JSON.stringify({ volume: name, scale: opts.scale, steps }, null, 2));
      console.log(`results: ${out}`);
    } catch (err) {
      console.error(err instanceof Error ? err.message : String(err));
      code = 1;
    } finally {
      volume.unmutate();
      bucket.child.kill();
      if (!opts.keep) rmSync(run, { recursive: true, force: true });
    }
    return code;
  },
};
