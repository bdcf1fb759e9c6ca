/**
 * testing: helpers for the node's unit tests: every service wired around a
 * database in a temp data directory, with a manual clock and the process
 * runtime. The job queue is not started unless asked: operations queue their
 * jobs and nothing runs, so tests see exactly what a request recorded.
 * Not part of the build.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { type Services, wireServices } from '../services/wire.js';
import { ManualClock } from '../core/clock.js';
import { Store } from '../db/store.js';
import { ProcessRuntime } from '../runtime/process/process-runtime.js';
import type { OffsiteTarget } from '../services/offsite-target.js';
import { Paths } from '../services/paths.js';

export interface TestNode {
  readonly services: Services;
  readonly store: Store;
  readonly clock: ManualClock;
  readonly dataDir: string;
  /** reopen closes the database and wires everything again on the same data directory (a restart). */
  reopen(): Promise<TestNode>;
  close(): Promise<void>;
}

export const TEST_SDL = `version: "2.0"
services:
  app:
    image: busybox
    command: ["sh", "-c"]
    args:
      - "sleep 1000"
    params:
      storage:
        data:
          mount: /data
profiles:
  compute:
    app:
      resources:
        storage:
          - size: 512Mi
          - name: data
            size: 1Gi
            attributes:
              persistent: true
deployment:
  app:
    local:
      profile: app
      count: 1
`;

export function testNode(
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-node-')),
  clock = new ManualClock(Date.now()),
  /** An off-node target (its loop is not started: tests drive it, or only look at what is queued). */
  offsite: OffsiteTarget | null = null,
): TestNode {
  const paths = new Paths(dataDir);
  const store = Store.open(paths.database);
  const runtime = new ProcessRuntime({ stateDir: paths.runtimeDir, stopTimeoutMs: 1000 });
  const services = wireServices({
    store,
    runtime,
    paths,
    clock,
    log: pino({ level: process.env.KOVA_TEST_LOG ?? 'silent' }),
    minSnapshotIntervalMs: 1000,
    jobConcurrency: 1,
    offsite,
    offsiteOptions: { catalogue: false },
  });
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await services.ctx.jobs.stop();
    await runtime.close();
    store.close();
  };
  return {
    services,
    store,
    clock,
    dataDir,
    async reopen() {
      await close();
      return testNode(dataDir, clock, offsite);
    },
    async close() {
      await close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** userWithDeployment creates a user (when missing) and an active deployment of TEST_SDL whose deploy job is marked done. */
export function userWithDeployment(node: TestNode, userId = 'usr-alice'): { userId: string; depId: string } {
  const { store, services, clock } = node;
  if (!store.users.get(userId)) store.users.insert({ id: userId, name: userId, createdAt: clock.now() });
  const d = services.deployments.create(userId, TEST_SDL, 'app');
  // The deploy job is done as far as the tests are concerned.
  for (const j of store.jobs.pending()) store.jobs.finish(j.id, 'done', null, clock.now());
  return { userId, depId: d.id };
}
