/**
 * The process runtime on real processes: start, freeze/thaw (confirmed by a
 * file that stops growing), exec, stop with and without SIGTERM handling,
 * services found again by a new server process, the pid reuse guard, and no
 * process left behind.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DeploymentSpec, ServiceSpec, ServiceStatus } from '../types.js';
import { BOOT_ID, readStat } from './proc.js';
import { ProcessRuntime } from './process-runtime.js';
import { StateStore } from './state-store.js';
import { expectRuntimeError, grows, leaked, lines, waitFor } from './testing.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../../..');
/** Every deployment of this file starts with it, which is how leaked processes are found. */
const PREFIX = `pt${process.pid}-`;
const COUNTER = 'i=0; while true; do i=$((i+1)); echo $i >> "$KOVA_VOLUME_DATA/seq"; sleep 0.01; done';

let root: string;
let stateDir: string;
let dataDir: string;
let runtimes: ProcessRuntime[] = [];
let seq = 0;

function runtime(stopTimeoutMs = 2000): ProcessRuntime {
  const rt = new ProcessRuntime({ stateDir, stopTimeoutMs });
  runtimes.push(rt);
  return rt;
}

function service(name: string, script: string, over: Partial<ServiceSpec> = {}): ServiceSpec {
  return { name, image: 'ignored:latest', command: ['sh', '-c', script], args: [], env: {}, volumes: [], ...over };
}

function deployment(...services: ServiceSpec[]): DeploymentSpec {
  return { deploymentId: `${PREFIX}${++seq}`, services };
}

function dataVolume(name = 'data', hostPath = dataDir) {
  return { name, hostPath, mountPath: '/data' };
}

async function state(rt: ProcessRuntime, id: string, name: string): Promise<ServiceStatus> {
  const st = (await rt.status(id)).find((s) => s.name === name);
  if (!st) throw new Error(`no status for ${name}`);
  return st;
}

async function leaderPid(id: string, name: string): Promise<number> {
  const rec = (await new StateStore(stateDir).read(id))?.services[name];
  if (!rec) throw new Error(`no record for ${name}`);
  return rec.pid;
}

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-process-runtime-'));
  stateDir = path.join(root, 'state');
  dataDir = path.join(root, 'data');
  fs.mkdirSync(dataDir);
});

afterEach(async () => {
  const cleaner = new ProcessRuntime({ stateDir, stopTimeoutMs: 500 });
  for (const id of await cleaner.deployments()) await cleaner.remove(id);
  await cleaner.close();
  for (const rt of runtimes) await rt.close();
  runtimes = [];
  fs.rmSync(root, { recursive: true, force: true });
});

afterAll(() => {
  const left = leaked(PREFIX);
  for (const pid of left) process.kill(pid, 'SIGKILL');
  expect(left).toEqual([]);
});

describe('ProcessRuntime', () => {
  it('runs a service as its own process group, in its first volume, with a clean environment', async () => {
    const rt = runtime();
    const other = path.join(root, 'other');
    fs.mkdirSync(other);
    const spec = deployment(
      service('counter', COUNTER, { volumes: [dataVolume()] }),
      service('env', 'env > "$KOVA_VOLUME_MY_DATA/env.txt"; pwd > cwd.txt; exec sleep 30', {
        env: { FOO: 'bar' },
        volumes: [dataVolume('my-data', other), dataVolume('data')],
      }),
      service('scratch', 'pwd > cwd.txt; exec sleep 30'),
    );
    await rt.create(spec);
    expect((await rt.status(spec.deploymentId)).map((s) => s.state)).toEqual(['stopped', 'stopped', 'stopped']);
    await rt.start(spec.deploymentId);
    expect(await state(rt, spec.deploymentId, 'counter')).toMatchObject({ state: 'running', exitCode: null });
    expect((await state(rt, spec.deploymentId, 'counter')).startedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    await grows(path.join(dataDir, 'seq'));

    const pid = await leaderPid(spec.deploymentId, 'counter');
    expect(readStat(pid)?.pgrp).toBe(pid);
    expect(fs.readlinkSync(`/proc/${pid}/cwd`)).toBe(fs.realpathSync(dataDir));

    const envFile = path.join(other, 'env.txt');
    await waitFor('env.txt', () => fs.existsSync(path.join(other, 'cwd.txt')));
    const env = Object.fromEntries(
      fs
        .readFileSync(envFile, 'utf8')
        .trim()
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(env).toMatchObject({
      FOO: 'bar',
      KOVA_VOLUME_MY_DATA: other,
      KOVA_VOLUME_DATA: dataDir,
      KOVA_DEPLOYMENT: spec.deploymentId,
      KOVA_SERVICE: 'env',
    });
    expect(env.VITEST).toBeUndefined(); // nothing else is inherited from the server
    expect(fs.readFileSync(path.join(other, 'cwd.txt'), 'utf8').trim()).toBe(other);
    const scratch = path.join(stateDir, 'scratch', spec.deploymentId, 'scratch');
    await waitFor('scratch cwd', () => fs.existsSync(path.join(scratch, 'cwd.txt')));
    expect(fs.readFileSync(path.join(scratch, 'cwd.txt'), 'utf8').trim()).toBe(scratch);
    expect(fs.readFileSync(path.join(stateDir, 'logs', spec.deploymentId, 'counter.log'), 'utf8')).toContain('starting');

    await rt.start(spec.deploymentId); // idempotent: nothing restarted
    expect(await leaderPid(spec.deploymentId, 'counter')).toBe(pid);
  });

  it('freezes and thaws, exec runs next to the service, stop is quick, start again', async () => {
    const rt = runtime();
    const seqFile = path.join(dataDir, 'seq');
    const spec = deployment(service('counter', `sleep 60 & ${COUNTER}`, { volumes: [dataVolume()] }));
    const id = spec.deploymentId;
    await rt.create(spec);
    await rt.start(id);
    await grows(seqFile);

    await rt.freeze(id);
    expect(await state(rt, id, 'counter')).toMatchObject({ state: 'paused' });
    const frozenAt = lines(seqFile);
    await sleep(300);
    expect(lines(seqFile)).toBe(frozenAt);
    await rt.freeze(id); // idempotent
    await expectRuntimeError(rt.exec(id, 'counter', ['true']), /frozen/);

    await rt.thaw(id);
    expect(await state(rt, id, 'counter')).toMatchObject({ state: 'running' });
    await grows(seqFile);
    // dash starts each command with vfork: freezes often land between vfork and exec.
    for (let i = 0; i < 50; i++) {
      await rt.freeze(id);
      expect(await state(rt, id, 'counter')).toMatchObject({ state: 'paused' });
      await rt.thaw(id);
      await sleep(i % 7);
    }

    expect(await rt.exec(id, 'counter', ['sh', '-c', 'echo hi; exit 3'])).toEqual({ exitCode: 3, output: 'hi\n' });
    const pwd = await rt.exec(id, 'counter', ['sh', '-c', 'pwd; echo "$KOVA_SERVICE" >&2']);
    expect(pwd).toEqual({ exitCode: 0, output: `${dataDir}\ncounter\n` });
    const t0 = Date.now();
    const slow = await rt.exec(id, 'counter', ['sh', '-c', 'echo started; sleep 30'], { timeoutMs: 200 });
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(slow.exitCode).not.toBe(0);
    expect(slow.output).toMatch(/^started\n[\s\S]*timed out after 200 ms/);
    expect((await rt.exec(id, 'counter', ['no-such-program-kova'])).exitCode).toBe(127);
    await expectRuntimeError(rt.exec(id, 'nope', ['true']), /no such service/);

    await rt.freeze(id); // stop must also end a frozen service
    const pid = await leaderPid(id, 'counter');
    const t1 = Date.now();
    await rt.stop(id);
    expect(Date.now() - t1).toBeLessThan(1000);
    expect(await state(rt, id, 'counter')).toMatchObject({ state: 'stopped' });
    expect(readStat(pid)?.state ?? 'Z').toBe('Z'); // at most a zombie until reaped
    const stoppedAt = lines(seqFile);
    await sleep(100);
    expect(lines(seqFile)).toBe(stoppedAt);
    await waitFor('exit code', async () => (await state(rt, id, 'counter')).exitCode === 128 + os.constants.signals.SIGTERM);
    await rt.stop(id); // idempotent
    await expectRuntimeError(rt.exec(id, 'counter', ['true']), /not running/);

    await rt.start(id);
    expect(await state(rt, id, 'counter')).toMatchObject({ state: 'running', exitCode: null });
    expect(await leaderPid(id, 'counter')).not.toBe(pid);
    await grows(seqFile);
  });

  it('finds, freezes and stops the services of a server process that has exited', async () => {
    const spec = deployment(service('counter', COUNTER, { volumes: [dataVolume()] }));
    const id = spec.deploymentId;
    const script = path.join(root, 'server.mjs');
    const modUrl = new URL('./process-runtime.ts', import.meta.url).href;
    fs.writeFileSync(
      script,
      `import { ProcessRuntime } from ${JSON.stringify(modUrl)};
       const rt = new ProcessRuntime({ stateDir: ${JSON.stringify(stateDir)} });
       await rt.create(${JSON.stringify(spec)});
       await rt.start(${JSON.stringify(id)});
       await rt.close();`,
    );
    // The server exits on its own while its service keeps running.
    const server = spawn(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    server.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const [code] = (await once(server, 'exit')) as [number | null];
    expect(stderr).toBe('');
    expect(code).toBe(0);

    const rt = runtime();
    expect(await rt.deployments()).toEqual([id]);
    expect(await state(rt, id, 'counter')).toMatchObject({ state: 'running' });
    const pid = await leaderPid(id, 'counter');
    expect(readStat(pid)?.ppid).not.toBe(server.pid); // re-parented
    await grows(path.join(dataDir, 'seq'));

    await rt.freeze(id);
    expect(await state(rt, id, 'counter')).toMatchObject({ state: 'paused' });
    const frozenAt = lines(path.join(dataDir, 'seq'));
    await sleep(200);
    expect(lines(path.join(dataDir, 'seq'))).toBe(frozenAt);
    await rt.thaw(id);
    await grows(path.join(dataDir, 'seq'));
    await rt.stop(id);
    expect(await state(rt, id, 'counter')).toMatchObject({ state: 'stopped', exitCode: null }); // not our child
  });

  it('never takes a recycled pid for a service', async () => {
    const stranger = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
    try {
      const pid = stranger.pid ?? 0;
      const start = await waitFor('stranger start time', () => readStat(pid)?.startTime);
      const rt = runtime();
      const spec = deployment(service('a', 'exec sleep 30'), service('b', 'exec sleep 30'));
      await rt.create(spec);
      const store = new StateStore(stateDir);
      const startedAt = new Date().toISOString();
      await store.write({
        version: 1,
        spec,
        services: {
          a: { pid, startTime: String(Number(start) + 1), bootId: BOOT_ID, startedAt },
          b: { pid, startTime: start, bootId: 'another-boot', startedAt },
        },
      });
      expect((await rt.status(spec.deploymentId)).map((s) => s.state)).toEqual(['stopped', 'stopped']);
      await rt.freeze(spec.deploymentId);
      await sleep(50);
      expect(readStat(pid)?.state).toBe('S');
      await rt.stop(spec.deploymentId);
      await rt.remove(spec.deploymentId);
      await sleep(50);
      expect(readStat(pid)?.state).toBe('S');
      expect(stranger.exitCode).toBeNull();
    } finally {
      stranger.kill('SIGKILL');
    }
  });

  it('remove stops the services and forgets the deployment, keeping the volume', async () => {
    const rt = runtime();
    const spec = deployment(service('counter', COUNTER, { volumes: [dataVolume()] }));
    await rt.create(spec);
    await rt.start(spec.deploymentId);
    await grows(path.join(dataDir, 'seq'));
    const pid = await leaderPid(spec.deploymentId, 'counter');
    await rt.remove(spec.deploymentId);
    expect(readStat(pid)?.state ?? 'Z').toBe('Z');
    expect(await rt.status(spec.deploymentId)).toEqual([{ name: 'counter', state: 'missing', startedAt: null, exitCode: null }]);
    expect(await rt.deployments()).toEqual([]);
    expect(lines(path.join(dataDir, 'seq'))).toBeGreaterThan(0);
    await rt.remove(spec.deploymentId); // idempotent
    await expectRuntimeError(rt.start(spec.deploymentId), /no services/);
  });

  it('reports the exit code of a service that ends on its own', async () => {
    const rt = runtime();
    const spec = deployment(service('once', '', { command: [], args: ['sh', '-c', 'echo bye; exit 7'] }));
    await rt.create(spec);
    await rt.start(spec.deploymentId);
    const st = await waitFor('exit', async () => {
      const s = await state(rt, spec.deploymentId, 'once');
      return s.exitCode !== null && s;
    });
    expect(st).toMatchObject({ state: 'stopped', exitCode: 7 });
    expect(fs.readFileSync(path.join(stateDir, 'logs', spec.deploymentId, 'once.log'), 'utf8')).toContain('bye\n');
  });

  it('stop ends what a service left behind in its process group', async () => {
    const rt = runtime();
    const spec = deployment(service('parent', 'sleep 60 & echo $! > bg.pid; exit 0', { volumes: [dataVolume()] }));
    await rt.create(spec);
    await rt.start(spec.deploymentId);
    const st = await waitFor('exit', async () => {
      const s = await state(rt, spec.deploymentId, 'parent');
      return s.exitCode !== null && s;
    });
    expect(st).toMatchObject({ state: 'stopped', exitCode: 0 });
    const bg = Number(fs.readFileSync(path.join(dataDir, 'bg.pid'), 'utf8'));
    expect(readStat(bg)?.state).toMatch(/^[RSD]$/); // alive, though its leader is gone
    await rt.stop(spec.deploymentId);
    expect(readStat(bg)?.state ?? 'Z').toBe('Z');
  });

  it('kills a service that ignores SIGTERM after the stop timeout', async () => {
    const rt = runtime(300);
    const spec = deployment(service('stubborn', "trap '' TERM; echo ready; while true; do sleep 0.05; done"));
    const log = path.join(stateDir, 'logs', spec.deploymentId, 'stubborn.log');
    await rt.create(spec);
    await rt.start(spec.deploymentId);
    await waitFor('trap', () => /^ready$/m.test(fs.readFileSync(log, 'utf8')));
    const t0 = Date.now();
    await rt.stop(spec.deploymentId);
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(1500);
    const st = await waitFor('exit', async () => {
      const s = await state(rt, spec.deploymentId, 'stubborn');
      return s.exitCode !== null && s;
    });
    expect(st).toMatchObject({ state: 'stopped', exitCode: 128 + os.constants.signals.SIGKILL });
  });

  it('rejects what it cannot run', async () => {
    const rt = runtime();
    await expectRuntimeError(rt.create(deployment(service('x', '', { command: [], args: [] }))), /process runtime needs a command/);
    await expectRuntimeError(rt.create({ deploymentId: '../x', services: [] }), /invalid deployment/);
    const missing = deployment(service('x', '', { command: ['/no/such/program-kova'] }));
    await rt.create(missing);
    await expectRuntimeError(rt.start(missing.deploymentId), /service x: cannot run "\/no\/such\/program-kova": not found/);
    const noDir = deployment(service('x', 'true', { volumes: [dataVolume('data', path.join(root, 'absent'))] }));
    await rt.create(noDir);
    await expectRuntimeError(rt.start(noDir.deploymentId), /service x: volume data: directory .* does not exist/);
    await rt.close();
    await expectRuntimeError(rt.status(missing.deploymentId), /closed/);
  });
});
