/**
 * Restores and SDL updates when services or volumes are renamed or removed,
 * on the process runtime through the API of the in-process harness: a
 * snapshot's data goes into the renamed volume, or the restore is refused
 * (409) before anything is stopped or written; volume directories the SDL no
 * longer uses don't stay behind unless only they hold the data.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createDeployment,
  expectStatus,
  getDeployment,
  restoreCompleted,
  snapshotReady,
  volumeDir,
  waitIdle,
  waitRunning,
} from './helpers/flows.js';
import { type Harness, startHarness } from './helpers/harness.js';

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});

afterAll(async () => {
  await h?.close();
});

interface Svc {
  readonly name: string;
  /** [volume name, mount path] */
  readonly volumes: ReadonlyArray<readonly [string, string]>;
}

/** sdlOf writes an SDL with these services, each sleeping, each with its own profile. */
function sdlOf(services: readonly Svc[]): string {
  const svc = services
    .map(
      (s) => `  ${s.name}:
    image: busybox
    command: ["sh", "-c"]
    args: ["while true; do sleep 1; done"]
    params:
      storage:
${s.volumes.map(([v, m]) => `        ${v}:\n          mount: ${m}`).join('\n')}`,
    )
    .join('\n');
  const profiles = services
    .map(
      (s) => `    p-${s.name}:
      resources:
        storage:
          - size: 512Mi
${s.volumes.map(([v]) => `          - name: ${v}\n            size: 1Gi\n            attributes:\n              persistent: true`).join('\n')}`,
    )
    .join('\n');
  const dep = services.map((s) => `  ${s.name}:\n    local:\n      profile: p-${s.name}\n      count: 1`).join('\n');
  return `version: "2.0"\nservices:\n${svc}\nprofiles:\n  compute:\n${profiles}\ndeployment:\n${dep}\n`;
}

function write(dir: string, name: string, text: string): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, name), text);
}

function listing(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
}

async function update(depId: string, sdl: string, snapshot = true): Promise<void> {
  const r = await h.api('PUT', `/api/v1/deployments/${depId}`, { sdl, snapshot });
  expectStatus(r, 202, 'update');
  await waitIdle(h.api, depId);
  const d = await getDeployment(h.api, depId);
  expect(d.sdl).toBe(sdl);
}

describe('restore after a service rename', () => {
  it('puts the snapshot taken before `app` became `web` back into web/data', async () => {
    const depId = await createDeployment(h.api, sdlOf([{ name: 'app', volumes: [['data', '/data']] }]));
    await waitRunning(h.api, depId);
    write(volumeDir(h.dataDir, depId, 'data', 'app'), 'db.txt', 'state at the snapshot\n');
    const snap = await snapshotReady(h.api, depId, 'before-rename');
    write(volumeDir(h.dataDir, depId, 'data', 'app'), 'db.txt', 'state at the update\n');

    await update(depId, sdlOf([{ name: 'web', volumes: [['data', '/data']] }]));
    await waitRunning(h.api, depId);
    const web = volumeDir(h.dataDir, depId, 'data', 'web');
    // The rename keeps the data: it moved with the volume, nothing stays orphaned.
    expect(fs.readFileSync(path.join(web, 'db.txt'), 'utf8')).toBe('state at the update\n');
    expect(fs.existsSync(path.join(h.dataDir, 'volumes', depId, 'app'))).toBe(false);
    write(web, 'important.txt', 'written after the rename\n');

    const plan = await h.api('GET', `/api/v1/deployments/${depId}/snapshots/${snap.id}/restore-plan`);
    expectStatus(plan, 200, 'restore plan');
    expect(plan.body.plan).toEqual({
      volumes: [{ from: 'app.data', to: 'web.data', match: 'mount' }],
      untouchedVolumes: [],
      missingVolumes: [],
      refusal: null,
      mode: null,
      into: null,
      paths: null,
    });

    const rst = await restoreCompleted(h.api, depId, snap.id);
    expect(rst.volumes).toEqual([{ from: 'app.data', to: 'web.data', match: 'mount' }]);
    expect(rst.untouchedVolumes).toEqual([]);
    expect(listing(web)).toEqual(['db.txt']);
    expect(fs.readFileSync(path.join(web, 'db.txt'), 'utf8')).toBe('state at the snapshot\n');
    expect(listing(path.join(h.dataDir, 'volumes', depId)).filter((n) => !n.startsWith('.'))).toEqual(['web']);
    await waitRunning(h.api, depId);
  });

  it('leaves a volume the snapshot does not hold as it is, and says so', async () => {
    const depId = await createDeployment(h.api, sdlOf([{ name: 'app', volumes: [['data', '/data']] }]));
    await waitRunning(h.api, depId);
    write(volumeDir(h.dataDir, depId, 'data', 'app'), 'a.txt', 'old\n');
    const snap = await snapshotReady(h.api, depId);
    await update(
      depId,
      sdlOf([
        {
          name: 'app',
          volumes: [
            ['data', '/data'],
            ['cache', '/cache'],
          ],
        },
      ]),
    );
    write(volumeDir(h.dataDir, depId, 'data', 'app'), 'a.txt', 'new\n');
    write(volumeDir(h.dataDir, depId, 'cache', 'app'), 'c.txt', 'kept\n');

    const rst = await restoreCompleted(h.api, depId, snap.id);
    expect(rst.volumes).toEqual([{ from: 'app.data', to: 'app.data', match: 'name' }]);
    const plan = await h.api('GET', `/api/v1/deployments/${depId}/snapshots/${snap.id}/restore-plan`);
    expect(plan.body.plan.untouchedVolumes).toEqual(['app.cache']);
    expect(rst.untouchedVolumes).toEqual(['app.cache']);
    expect(fs.readFileSync(path.join(volumeDir(h.dataDir, depId, 'data', 'app'), 'a.txt'), 'utf8')).toBe('old\n');
    expect(fs.readFileSync(path.join(volumeDir(h.dataDir, depId, 'cache', 'app'), 'c.txt'), 'utf8')).toBe('kept\n');
  });
});

describe('restore plan', () => {
  it('answers a repository that cannot be read with 500 and no host path', async () => {
    const depId = await createDeployment(h.api, sdlOf([{ name: 'app', volumes: [['data', '/data']] }]));
    await waitRunning(h.api, depId);
    const snap = await snapshotReady(h.api, depId);
    fs.rmSync(h.paths.repo(depId), { recursive: true, force: true });
    const r = await h.api('GET', `/api/v1/deployments/${depId}/snapshots/${snap.id}/restore-plan`);
    expect(r.status).toBe(500);
    expect(r.res.body).not.toContain(h.dataDir);
  });
});

describe('clone after a service rename', () => {
  it("fills the clone's renamed volume from a snapshot taken before the rename", async () => {
    const depId = await createDeployment(h.api, sdlOf([{ name: 'app', volumes: [['data', '/data']] }]));
    await waitRunning(h.api, depId);
    write(volumeDir(h.dataDir, depId, 'data', 'app'), 'db.txt', 'state at the snapshot\n');
    const snap = await snapshotReady(h.api, depId, 'before-rename');
    await update(depId, sdlOf([{ name: 'web', volumes: [['data', '/data']] }]));

    const r = await h.api('POST', `/api/v1/deployments/${depId}/snapshots/${snap.id}/clone`, {});
    expectStatus(r, 201, 'clone');
    const cloneId = r.body.deployment.id as string;
    await waitRunning(h.api, cloneId);
    expect(fs.readFileSync(path.join(volumeDir(h.dataDir, cloneId, 'data', 'web'), 'db.txt'), 'utf8')).toBe('state at the snapshot\n');
  });
});

describe('restore refused when volumes cannot be matched', () => {
  it('answers 409 VOLUMES_CHANGED naming the volumes, with no service stopped, no safety snapshot and no data touched', async () => {
    // Two services both mounting /data, both renamed: which one is which would be a guess.
    const depId = await createDeployment(
      h.api,
      sdlOf([
        { name: 'a', volumes: [['data', '/data']] },
        { name: 'b', volumes: [['data', '/data']] },
      ]),
    );
    await waitRunning(h.api, depId);
    write(volumeDir(h.dataDir, depId, 'data', 'a'), 'f', 'a\n');
    write(volumeDir(h.dataDir, depId, 'data', 'b'), 'f', 'b\n');
    const snap = await snapshotReady(h.api, depId);
    await update(
      depId,
      sdlOf([
        { name: 'c', volumes: [['data', '/data']] },
        { name: 'd', volumes: [['data', '/data']] },
      ]),
    );
    const before = await waitRunning(h.api, depId);
    // An ambiguous rename moves nothing; the before-update snapshot holds a and b, so their directories went.
    expect(listing(path.join(h.dataDir, 'volumes', depId))).toEqual(['c', 'd']);
    const c = volumeDir(h.dataDir, depId, 'data', 'c');
    const d = volumeDir(h.dataDir, depId, 'data', 'd');
    write(c, 'now', 'c\n');
    write(d, 'now', 'd\n');
    const snapshotsBefore = (await h.api('GET', `/api/v1/deployments/${depId}/snapshots`)).body.snapshots.length as number;

    const plan = await h.api('GET', `/api/v1/deployments/${depId}/snapshots/${snap.id}/restore-plan`);
    expectStatus(plan, 200, 'restore plan');
    expect(plan.body.plan.volumes).toEqual([]);
    expect(plan.body.plan.missingVolumes).toEqual(['a.data', 'b.data']);
    expect(plan.body.plan.untouchedVolumes).toEqual(['c.data', 'd.data']);
    expect(plan.body.plan.refusal.code).toBe('VOLUMES_CHANGED');

    const r = await h.api('POST', `/api/v1/deployments/${depId}/snapshots/${snap.id}/restore`, {});
    expectStatus(r, 409, 'restore');
    expect(r.body.error.code).toBe('VOLUMES_CHANGED');
    expect(r.body.error.message).toMatch(/a\.data, b\.data/);
    expect(r.body.error.message).toMatch(/not in the snapshot: c\.data, d\.data/);
    expect(r.body.error.message).toMatch(/nothing was changed/);

    await h.idle();
    expect((await h.api('GET', `/api/v1/deployments/${depId}/restores`)).body.restores).toEqual([]);
    expect((await h.api('GET', `/api/v1/deployments/${depId}/snapshots`)).body.snapshots).toHaveLength(snapshotsBefore);
    const after = await getDeployment(h.api, depId);
    expect(after.services.map((s: { state: string; startedAt: string }) => [s.state, s.startedAt])).toEqual(
      before.services.map((s: { startedAt: string }) => ['running', s.startedAt]),
    );
    expect(listing(c)).toEqual(['now']);
    expect(listing(d)).toEqual(['now']);
    expect(fs.readFileSync(path.join(c, 'now'), 'utf8')).toBe('c\n');
    expect(fs.readFileSync(path.join(d, 'now'), 'utf8')).toBe('d\n');
  });
});

describe('volume directories an SDL update leaves behind', () => {
  it('removes a removed volume once the before-update snapshot holds it, and keeps it without one', async () => {
    const two = sdlOf([
      {
        name: 'app',
        volumes: [
          ['data', '/data'],
          ['logs', '/logs'],
        ],
      },
    ]);
    const one = sdlOf([{ name: 'app', volumes: [['data', '/data']] }]);
    const depId = await createDeployment(h.api, two);
    await waitRunning(h.api, depId);
    const logs = volumeDir(h.dataDir, depId, 'logs', 'app');
    write(logs, 'l.txt', 'last line\n');

    // Without a before-update snapshot nothing else holds the data: it stays.
    await update(depId, one, false);
    expect(listing(logs)).toEqual(['l.txt']);

    // Brought back, then removed again with the snapshot: that snapshot holds it, the directory goes.
    await update(depId, two, false);
    write(logs, 'l.txt', 'very last line\n');
    await update(depId, one, true);
    expect(fs.existsSync(logs)).toBe(false);
    const snaps = (await h.api('GET', `/api/v1/deployments/${depId}/snapshots`)).body.snapshots as Array<{ id: string; trigger: string }>;
    const beforeUpdate = snaps.find((s) => s.trigger === 'before-update')!;
    const row = h.store.snapshots.get(beforeUpdate.id)!;
    const { extractSnapshot } = await import('./helpers/flows.js');
    const out = await extractSnapshot(h.paths, depId, row.engineId!, 'app.logs');
    try {
      expect(fs.readFileSync(path.join(out, 'l.txt'), 'utf8')).toBe('very last line\n');
    } finally {
      fs.rmSync(path.dirname(out), { recursive: true, force: true });
    }
  });

  it('removes an empty one without a snapshot', async () => {
    const depId = await createDeployment(
      h.api,
      sdlOf([
        { name: 'app', volumes: [['data', '/data']] },
        { name: 'side', volumes: [['tmp', '/tmp2']] },
      ]),
    );
    await waitRunning(h.api, depId);
    await update(depId, sdlOf([{ name: 'app', volumes: [['data', '/data']] }]), false);
    expect(listing(path.join(h.dataDir, 'volumes', depId))).toEqual(['app']);
  });
});
