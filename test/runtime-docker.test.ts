/**
 * The Docker runtime against the real engine: a service writing to a bind
 * mounted volume is started, frozen (the file stops growing), thawed, exec'd
 * into, stopped quickly, restarted on the same volume, restarted on a swapped
 * volume directory, listed and removed (the host directory stays). Also a two
 * service deployment freezing as a whole, and the errors callers see. The
 * confinement of each container is read back from the daemon (limits from
 * the SDL, capabilities, no-new-privileges) and checked from inside it.
 *
 * Needs dockerd and busybox-static (scripts/test-setup.sh). With CI=true a
 * missing daemon fails the suite; elsewhere it is skipped with a message.
 * The exec stream decoding is checked without Docker.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerClient } from '../src/runtime/docker/docker-client.js';
import { DockerRuntime, SERVICE_CAPABILITIES } from '../src/runtime/docker/docker-runtime.js';
import { parseSdlOrThrow } from '../src/sdl/parse-sdl.js';
import { runtimeSpec } from '../src/services/deployment-service.js';
import { Paths } from '../src/services/paths.js';
import { StreamDemuxer, TailBuffer, collectExecOutput } from '../src/runtime/docker/exec-stream.js';
import { type DeploymentSpec, RuntimeError } from '../src/runtime/types.js';
import { ensureBusyboxImage } from './helpers/images.js';

const IN_CI = process.env.CI === 'true' || process.env.CI === '1';
const SOCKET = process.env.DOCKER_HOST?.startsWith('unix://') ? process.env.DOCKER_HOST : undefined;
const DOCKER_UP = await DockerRuntime.available({ socketPath: SOCKET, timeoutMs: 3000 });
if (!DOCKER_UP && !IN_CI) {
  console.warn(
    `skipping the Docker runtime tests: no Docker daemon answers on ${SOCKET ?? '/var/run/docker.sock'} (run scripts/test-setup.sh)`,
  );
}

const WRITER = 'i=0; while true; do i=$((i+1)); echo $i >> /data/seq; sleep 0.01; done';

function frame(kind: number, payload: string): Buffer {
  const body = Buffer.from(payload);
  const header = Buffer.alloc(8);
  header[0] = kind;
  header.writeUInt32BE(body.length, 4);
  return Buffer.concat([header, body]);
}

describe('exec stream decoding', () => {
  it('demultiplexes frames however the chunks are cut', () => {
    const stream = Buffer.concat([frame(1, 'hello '), frame(2, 'oops\n'), frame(1, ''), frame(1, 'wörld\n')]);
    for (let cut = 1; cut <= stream.length; cut++) {
      const got: string[] = [];
      const demux = new StreamDemuxer((kind, payload) => got.push(`${kind}:${payload.toString()}`));
      for (let i = 0; i < stream.length; i += cut) demux.push(stream.subarray(i, i + cut));
      demux.end();
      expect(got.join('|'), `chunks of ${cut}`).toBe(['stdout:hello ', 'stderr:oops\n', 'stdout:wörld\n'].join('|'));
    }
  });

  it('passes a stream without frame headers through as output', () => {
    const out = collectExecOutput();
    out.push(Buffer.from('plain tty output\n'));
    out.push(Buffer.from('more\n'));
    expect(out.finish()).toBe('plain tty output\nmore\n');
  });

  it('keeps only the last bytes, not starting inside a character', () => {
    const tail = new TailBuffer(10);
    tail.push(Buffer.from('0123456789'));
    tail.push(Buffer.from('ab'));
    expect(tail.text()).toBe('23456789ab');
    expect(tail.truncated).toBe(true);
    const utf = new TailBuffer(5);
    utf.push(Buffer.from('xxé1234')); // é is 2 bytes: the cut falls inside it
    expect(utf.text()).toBe('1234');
    const out = collectExecOutput(4);
    out.push(frame(1, 'abcdef'));
    out.push(frame(2, 'gh'));
    expect(out.finish()).toBe('efgh');
  });
});

describe.skipIf(!DOCKER_UP && !IN_CI)('DockerRuntime on the real engine', () => {
  let rt: DockerRuntime;
  let image: string;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-docker-test-'));
  const run = `t${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  const created: string[] = [];

  beforeAll(async () => {
    if (!DOCKER_UP) throw new Error(`CI: Docker is required but no daemon answers on ${SOCKET ?? '/var/run/docker.sock'}`);
    image = await ensureBusyboxImage({ socketPath: SOCKET });
    rt = new DockerRuntime({ socketPath: SOCKET, networkMode: 'none', stopTimeoutSec: 10 });
  });

  afterAll(async () => {
    if (rt) {
      for (const id of created) await rt.remove(id).catch(() => undefined);
      await rt.close();
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  function spec(id: string, services: Array<{ name: string; dir: string }>): DeploymentSpec {
    created.push(id);
    return {
      deploymentId: id,
      services: services.map((s) => ({
        name: s.name,
        image,
        command: ['sh', '-c', WRITER],
        args: [],
        env: { KOVA_TEST: '1' },
        volumes: [{ name: 'data', hostPath: s.dir, mountPath: '/data' }],
      })),
    };
  }

  function lines(dir: string): number {
    try {
      return fs
        .readFileSync(path.join(dir, 'seq'), 'utf8')
        .split('\n')
        .filter((l) => l !== '').length;
    } catch {
      return 0;
    }
  }

  async function grows(dir: string, timeoutMs = 10_000): Promise<void> {
    const start = lines(dir);
    const deadline = Date.now() + timeoutMs;
    while (lines(dir) <= start + 2) {
      if (Date.now() > deadline) throw new Error(`${dir}/seq did not grow (stuck at ${lines(dir)} lines)`);
      await sleep(20);
    }
  }

  async function staysStill(dir: string, ms = 300): Promise<void> {
    const before = lines(dir);
    await sleep(ms);
    expect(lines(dir), `${dir}/seq grew while frozen`).toBe(before);
  }

  async function states(id: string): Promise<string[]> {
    return (await rt.status(id)).map((s) => `${s.name}=${s.state}`);
  }

  function mkdir(name: string): string {
    const dir = path.join(tmp, name);
    fs.mkdirSync(dir, { recursive: true });
    return dir;
  }

  it('runs a service through its whole life on a bind mounted volume', async () => {
    const id = `${run}-one`;
    const dir = mkdir('one');
    await rt.create(spec(id, [{ name: 'app', dir }]));
    await rt.create(spec(id, [{ name: 'app', dir }])); // re-create replaces
    expect(await states(id)).toEqual(['app=stopped']);

    await rt.start(id);
    await rt.start(id); // already started: success
    const st = await rt.status(id);
    expect(st).toMatchObject([{ name: 'app', state: 'running', exitCode: null }]);
    expect(Number.isNaN(Date.parse(st[0]?.startedAt ?? ''))).toBe(false);
    await grows(dir);

    let t = Date.now();
    await rt.freeze(id);
    const freezeMs = Date.now() - t;
    await rt.freeze(id); // already frozen: success
    expect(await states(id)).toEqual(['app=paused']);
    await staysStill(dir);
    t = Date.now();
    await rt.thaw(id);
    const thawMs = Date.now() - t;
    await rt.thaw(id); // not frozen: success
    expect(await states(id)).toEqual(['app=running']);
    await grows(dir);

    const ex = await rt.exec(id, 'app', ['sh', '-c', 'echo hi; exit 3']);
    expect(ex).toEqual({ exitCode: 3, output: 'hi\n' });
    expect((await rt.exec(id, 'app', ['sh', '-c', 'echo to-stderr >&2'])).output).toBe('to-stderr\n');
    expect((await rt.exec(id, 'app', ['sh', '-c', 'echo $KOVA_TEST'])).output).toBe('1\n');
    const big = await rt.exec(id, 'app', ['sh', '-c', 'head -c 200000 /dev/zero | tr "\\0" x; echo END']);
    expect(big.output.length).toBe(64 * 1024);
    expect(big.output.endsWith('xEND\n')).toBe(true);
    await expect(rt.exec(id, 'app', ['sleep', '5'], { timeoutMs: 300 })).rejects.toThrow(/timed out after 300 ms/);

    t = Date.now();
    await rt.stop(id);
    const stopMs = Date.now() - t;
    expect(stopMs).toBeLessThan(4000);
    await rt.stop(id); // already stopped: success
    const stopped = await rt.status(id);
    expect(stopped).toMatchObject([{ name: 'app', state: 'stopped' }]);
    expect(stopped[0]?.exitCode).toEqual(expect.any(Number));
    await expect(rt.exec(id, 'app', ['true'])).rejects.toThrow(/not running/);

    // Restart on the same volume: old content is still there and grows on.
    fs.writeFileSync(path.join(dir, 'kept'), 'kept\n');
    t = Date.now();
    await rt.start(id);
    const startMs = Date.now() - t;
    expect(await states(id)).toEqual(['app=running']);
    expect((await rt.exec(id, 'app', ['cat', '/data/kept'])).output).toBe('kept\n');
    await grows(dir);
    console.info(`docker: freeze ${freezeMs} ms, thaw ${thawMs} ms, stop ${stopMs} ms, start ${startMs} ms`);
  });

  it('sees a volume directory swapped while stopped', async () => {
    const id = `${run}-one`;
    const dir = path.join(tmp, 'one');
    await rt.stop(id);
    fs.renameSync(dir, path.join(tmp, 'one.old'));
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'marker'), 'swapped\n');
    await rt.start(id);
    expect(await rt.exec(id, 'app', ['cat', '/data/marker'])).toEqual({ exitCode: 0, output: 'swapped\n' });
    await grows(dir);
    const oldLines = lines(path.join(tmp, 'one.old'));
    await sleep(100);
    expect(lines(path.join(tmp, 'one.old'))).toBe(oldLines);
  });

  it('mounts a read-only volume read-only', async () => {
    const id = `${run}-ro`;
    const data = mkdir('ro-data');
    const ro = mkdir('ro-config');
    fs.writeFileSync(path.join(ro, 'setting'), 'on\n');
    const base = spec(id, [{ name: 'app', dir: data }]);
    const svc = base.services[0]!;
    await rt.create({
      ...base,
      services: [{ ...svc, volumes: [...svc.volumes, { name: 'config', hostPath: ro, mountPath: '/config', readOnly: true }] }],
    });
    await rt.start(id);
    expect(await rt.exec(id, 'app', ['cat', '/config/setting'])).toEqual({ exitCode: 0, output: 'on\n' });
    const write = await rt.exec(id, 'app', ['sh', '-c', 'echo x > /config/new']);
    expect(write.exitCode).not.toBe(0);
    expect(fs.existsSync(path.join(ro, 'new'))).toBe(false);
    await grows(data);
    await rt.remove(id);
  });

  it('lists and removes the deployment, keeping the host directory', async () => {
    const id = `${run}-one`;
    expect(await rt.deployments()).toContain(id);
    await rt.remove(id);
    expect(await states(id)).toEqual(['app=missing']);
    expect(await rt.deployments()).not.toContain(id);
    expect(fs.readFileSync(path.join(tmp, 'one', 'marker'), 'utf8')).toBe('swapped\n');
    await rt.remove(id); // already gone: success
    await expect(rt.start(id)).rejects.toThrow(RuntimeError);
  });

  it('freezes and thaws every service of a deployment', async () => {
    const id = `${run}-two`;
    const a = mkdir('two-a');
    const b = mkdir('two-b');
    await rt.create(
      spec(id, [
        { name: 'web', dir: a },
        { name: 'db', dir: b },
      ]),
    );
    await rt.start(id);
    await Promise.all([grows(a), grows(b)]);
    await rt.freeze(id);
    expect(await states(id)).toEqual(['web=paused', 'db=paused']);
    await Promise.all([staysStill(a), staysStill(b)]);
    await rt.thaw(id);
    expect(await states(id)).toEqual(['web=running', 'db=running']);
    await Promise.all([grows(a), grows(b)]);
    // stop() on a frozen deployment thaws it first, so it still stops quickly.
    await rt.freeze(id);
    const t = Date.now();
    await rt.stop(id);
    expect(Date.now() - t).toBeLessThan(4000);
    expect(await states(id)).toEqual(['web=stopped', 'db=stopped']);
    await rt.remove(id);
    expect(await states(id)).toEqual(['web=missing', 'db=missing']);
  });

  /** The part of a container's inspect output the confinement tests read. */
  interface HostConfig {
    Memory: number;
    MemorySwap: number;
    NanoCpus: number;
    PidsLimit: number | null;
    CapDrop: string[] | null;
    CapAdd: string[] | null;
    SecurityOpt: string[] | null;
  }

  async function hostConfig(id: string, service: string): Promise<HostConfig> {
    const client = new DockerClient({ socketPath: SOCKET });
    try {
      const info = await client.json<{ HostConfig: HostConfig }>('GET', `/containers/kova-${id}-${service}/json`);
      return info!.HostConfig;
    } finally {
      client.close();
    }
  }

  it("runs a service under its SDL's cpu and memory, a pid limit, minimal capabilities and no-new-privileges", async () => {
    const id = `${run}-limits`;
    created.push(id);
    const sdl = `
version: "2.0"
services:
  app:
    image: ${image}
    command: [sh, -c, "${WRITER}"]
    params:
      storage:
        data: {mount: /data}
  plain:
    image: ${image}
    command: [sh, -c, "sleep 3600"]
profiles:
  compute:
    app:
      resources:
        cpu: {units: 250m}
        memory: {size: 64Mi}
        storage:
          - name: data
            size: 1Gi
            attributes: {persistent: true}
    plain:
      resources: {}
`;
    const paths = new Paths(mkdir('limits'));
    const deployment = runtimeSpec(paths, id, parseSdlOrThrow(sdl));
    fs.mkdirSync(deployment.services[0]!.volumes[0]!.hostPath, { recursive: true });
    const limited = new DockerRuntime({ socketPath: SOCKET, networkMode: 'none', stopTimeoutSec: 10, pidsLimit: 64 });
    try {
      await limited.create(deployment);
      const app = await hostConfig(id, 'app');
      expect(app.Memory).toBe(64 * 1024 * 1024);
      expect(app.MemorySwap).toBe(64 * 1024 * 1024);
      expect(app.NanoCpus).toBe(250_000_000);
      expect(app.PidsLimit).toBe(64);
      expect(app.CapDrop).toEqual(['ALL']);
      expect([...(app.CapAdd ?? [])].sort()).toEqual([...SERVICE_CAPABILITIES].sort());
      expect(app.CapAdd).not.toContain('NET_RAW');
      expect(app.SecurityOpt).toContain('no-new-privileges:true');
      // No cpu or memory in the profile: the default memory limit, no cpu limit.
      const plain = await hostConfig(id, 'plain');
      expect(plain.Memory).toBe(1024 ** 3);
      expect(plain.NanoCpus).toBe(0);
      expect(plain.PidsLimit).toBe(64);
      expect(plain.CapDrop).toEqual(['ALL']);

      // What the service sees from inside: no new privileges, only the kept capabilities.
      await limited.start(id);
      await grows(deployment.services[0]!.volumes[0]!.hostPath);
      const status = (await limited.exec(id, 'app', ['cat', '/proc/self/status'])).output;
      expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
      const capEff = BigInt(`0x${/^CapEff:\s+([0-9a-f]+)$/m.exec(status)?.[1] ?? 'ffffffff'}`);
      // CHOWN 0, DAC_OVERRIDE 1, FOWNER 3, FSETID 4, KILL 5, SETGID 6, SETUID 7, NET_BIND_SERVICE 10.
      expect(capEff).toBe([0, 1, 3, 4, 5, 6, 7, 10].reduce((m, bit) => m | (1n << BigInt(bit)), 0n));
      // cgroup v2 or v1 layout, whichever the host has.
      const pidsMax = await limited.exec(id, 'app', [
        'sh',
        '-c',
        'cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max',
      ]);
      expect(pidsMax.output.trim()).toBe('64');
      await limited.remove(id);
    } finally {
      await limited.remove(id).catch(() => undefined);
      await limited.close();
    }
  });

  it('refuses to mount a volume on a system path', async () => {
    const id = `${run}-sys`;
    const dir = mkdir('sys');
    for (const mountPath of ['/proc', '/proc/self', '/sys/fs', '/dev/shm', '/']) {
      const base = spec(id, [{ name: 'app', dir }]);
      const svc = base.services[0]!;
      const err = await rt.create({ ...base, services: [{ ...svc, volumes: [{ name: 'data', hostPath: dir, mountPath }] }] }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, mountPath).toBeInstanceOf(RuntimeError);
      expect((err as Error).message).toContain(`volume data: ${mountPath} is a system path`);
    }
    expect(await rt.deployments()).not.toContain(id);
  });

  it('reports errors readably', async () => {
    const id = `${run}-bad`;
    const err = await rt
      .create({
        deploymentId: id,
        services: [{ name: 'x', image: 'kova-test/does-not-exist:1', command: [], args: [], env: {}, volumes: [] }],
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(RuntimeError);
    expect((err as Error).message).toMatch(/image kova-test\/does-not-exist:1 is not available on this node/);
    expect((err as Error).message).not.toMatch(/\n\s+at /);
    expect(await rt.deployments()).not.toContain(id);
    await expect(rt.exec(id, 'x', ['true'])).rejects.toThrow(/no such service/);
    await expect(rt.create({ deploymentId: 'bad id', services: [] })).rejects.toThrow(RuntimeError);
    const down = new DockerRuntime({ socketPath: path.join(tmp, 'no.sock') });
    await expect(down.deployments()).rejects.toThrow(/does not exist/);
    expect(await DockerRuntime.available({ socketPath: path.join(tmp, 'no.sock') })).toBe(false);
    await down.close();
  });
});
