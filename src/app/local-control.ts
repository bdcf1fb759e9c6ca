/**
 * local-control: the control plane inside `kova serve`. The all-in-one is
 * the control plane plus one local node in one process: the catalogue is a
 * SQLite file in the data directory (`control.db`, mode 600), the node is
 * registered there as `local`, its agent talks to the control plane through
 * the in-process transport (src/node/in-process-transport.ts) and the API
 * is served by the control plane's backend (src/control/backend.ts), the
 * same code as `kova control-plane`. The node keeps its own journal
 * (`kova.db`) exactly as `kova node` does.
 *
 * What differs from network mode, and why:
 * - every new deployment goes to the local node, which decides whether it
 *   has room (no placement), and views show `node: null`;
 * - the local node is never offline while the process runs, and a request
 *   waits up to LOCAL_WAIT_MS for its answer (a restore plan reads the
 *   repository);
 * - snapshot browsing, verifications, webhooks and a deployment's snapshot
 *   health are served by the node's services directly (they read its
 *   repository and its journal, which a control plane asks for through
 *   reads the in-process transport does not carry; the health depends on
 *   the time, which no document carries);
 * - users and API keys live in the catalogue and are copied into the node's
 *   journal (mirrorKeys) at every start and after every change, so that
 *   the catalogue document an off-node copy carries holds them and the
 *   same keys work after `kova serve --recover-from`;
 * - state documents flow at once: the node sends what changed every
 *   LOCAL_STATE_SYNC.pollMs and right after each operation; the live part
 *   (service states, volume bytes) is counted every LOCAL_HEARTBEAT_MS.
 *
 * Upgrade in place: a data directory written before the catalogue existed
 * (users and keys in kova.db) is taken over at the first start: users (the
 * user `admin` as an admin) and keys are copied with their ids, prefixes
 * and hashes, then the local node is registered (the mark that this was
 * done). At every start each deployment of kova.db that the catalogue does
 * not know is placed on the local node and its document sent again.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { AppDeps, DeploymentsApi, KeysApi } from '../api/deps.js';
import type { Clock } from '../core/clock.js';
import { ControlBackend } from '../control/backend.js';
import type { Catalogue, CatalogueNode } from '../control/catalogue.js';
import { Dispatcher } from '../control/dispatch.js';
import { CatalogueKeys } from '../control/keys.js';
import { NodeSide } from '../control/node-side.js';
import { hashNodeToken, newNodeToken, openCatalogue } from '../control/store/index.js';
import { SyncVersions } from '../db/node-journal.js';
import type { Store } from '../db/store.js';
import { NodeAgent } from '../node/agent.js';
import { InProcessTransport } from '../node/in-process-transport.js';
import type { StateSyncOptions } from '../node/state-sync.js';
import type { HashGate, Principal } from '../services/keys.js';
import { targetIdentity } from '../services/offsite-target.js';
import { snapshotHealth } from '../services/snapshot-health.js';
import type { Services } from '../services/wire.js';

/** The catalogue's file in the data directory. */
export const CONTROL_DB = 'control.db';
/** The name the local node is registered under. */
export const LOCAL_NODE_NAME = 'local';
/** How often the local node reports its capacity and counts changes of its live part (service states, volume bytes). */
export const LOCAL_HEARTBEAT_MS = 2_000;
/** How long an API request waits for the local node's answer. */
export const LOCAL_WAIT_MS = 5 * 60_000;
/** The local node runs in this process: it is never offline while the process runs. */
const NEVER_OFFLINE_MS = Number.MAX_SAFE_INTEGER;
/** Changes are looked for every 25 ms; progress-only documents go at most every 250 ms. */
export const LOCAL_STATE_SYNC: StateSyncOptions = { pollMs: 25, progressIntervalMs: 250 };

/** openLocalCatalogue opens (creating, mode 600) the catalogue of the data directory. */
export async function openLocalCatalogue(dataDir: string, clock: Clock): Promise<Catalogue> {
  const file = path.join(dataDir, CONTROL_DB);
  fs.closeSync(fs.openSync(file, 'a', 0o600));
  fs.chmodSync(file, 0o600);
  return openCatalogue(file, { clock });
}

/**
 * adoptLocalNode registers the local node (copying kova.db's users and keys
 * first, on the first start) and places every deployment of kova.db the
 * catalogue does not know on it. Safe to run again at every start, and
 * after a crash half way: each step inserts only what is missing.
 */
export async function adoptLocalNode(catalogue: Catalogue, store: Store, clock: Clock): Promise<CatalogueNode> {
  let node = await catalogue.node(LOCAL_NODE_NAME);
  if (!node) {
    for (const u of store.users.list()) {
      await catalogue.importUser({ ...u, role: u.name === 'admin' ? 'admin' : 'user' });
    }
    for (const k of store.apiKeys.list()) await catalogue.importKey(k);
    // Nobody holds this token: the local node never speaks HTTP.
    node = await catalogue.addNode(LOCAL_NODE_NAME, hashNodeToken(newNodeToken()), clock.now());
  }
  const versions = new SyncVersions(store.db);
  for (const d of store.deployments.list()) {
    if (await catalogue.deployment(d.id)) continue;
    const user = store.users.get(d.userId);
    if (!(await catalogue.user(d.userId))) {
      await catalogue.importUser({ id: d.userId, name: user?.name ?? d.userId, role: 'user', createdAt: user?.createdAt ?? d.createdAt });
    }
    const reserved =
      d.status === 'active' ? d.manifest.services.reduce((sum, s) => sum + s.volumes.reduce((n, v) => n + v.sizeBytes, 0), 0) : 0;
    await catalogue.place(d.id, d.userId, node.id, d.createdAt, reserved);
    versions.resend(d.id);
  }
  return node;
}

/** The one node is never offline, so there is no other node to recover on: the route is not served (404), as before. */
function withoutRecover(d: DeploymentsApi): DeploymentsApi {
  const { recover: _recover, ...rest } = d;
  return rest;
}

/**
 * mirrorKeys copies the catalogue's users and API keys into the node's
 * journal: keys it lacks are added, keys revoked in the catalogue are
 * revoked there too. The catalogue is where keys are checked; the journal's
 * copy is what an off-node catalogue document takes along. Safe to run at
 * any time and from several processes (each step is one statement that
 * only adds or revokes).
 */
export async function mirrorKeys(catalogue: Catalogue, store: Store): Promise<void> {
  for (const k of await catalogue.allKeys()) {
    if (!store.users.get(k.userId)) {
      const u = await catalogue.user(k.userId);
      const name = u?.name ?? k.userId;
      // A journal user of the same name with another id (written before the catalogue existed) keeps its name.
      const taken = store.users.byName(name) !== undefined;
      store.users.insert({ id: k.userId, name: taken ? k.userId : name, createdAt: u?.createdAt ?? k.createdAt });
    }
    const mine = store.apiKeys.get(k.prefix);
    if (!mine) store.apiKeys.insert(k);
    if (k.revokedAt !== null && (mine?.revokedAt ?? null) === null) store.apiKeys.revoke(k.prefix, k.revokedAt);
  }
}

/**
 * LocalKeys: API keys checked against the catalogue; a user who signs in is
 * also recorded in the node's journal (same id), where the node-side
 * features the API serves directly (webhooks) keep their rows.
 */
class LocalKeys implements KeysApi {
  constructor(
    readonly inner: CatalogueKeys,
    private readonly catalogue: Catalogue,
    private readonly store: Store,
  ) {}

  async authenticate(token: string, gate?: HashGate): Promise<Principal | null> {
    const p = await this.inner.authenticate(token, gate);
    if (p && !this.store.users.get(p.user.id)) {
      const taken = this.store.users.byName(p.user.name) !== undefined;
      this.store.users.insert({ id: p.user.id, name: taken ? p.user.id : p.user.name, createdAt: p.user.createdAt });
    }
    return p;
  }

  create: KeysApi['create'] = async (userId, label) => {
    const created = await this.inner.create(userId, label);
    await mirrorKeys(this.catalogue, this.store);
    return created;
  };
  list: KeysApi['list'] = (userId) => this.inner.list(userId);
  revoke: KeysApi['revoke'] = async (prefix, userId) => {
    const revoked = await this.inner.revoke(prefix, userId);
    await mirrorKeys(this.catalogue, this.store);
    return revoked;
  };
}

export interface LocalControl {
  readonly catalogue: Catalogue;
  /** The catalogue's key service (users' API keys). */
  readonly keys: CatalogueKeys;
  readonly node: CatalogueNode;
  readonly agent: NodeAgent;
  /** What the API serves, for buildApp (with the caller's metrics, clock and config). */
  readonly deps: Pick<AppDeps, 'keys' | 'deployments' | 'snapshots' | 'restores' | 'browse' | 'settings' | 'verifications' | 'webhooks'>;
  /**
   * settle resolves once every operation handed to the node was answered
   * and every change it holds, the live part counted now included, was sent.
   */
  settle(): Promise<void>;
  /** stop ends the waits for the node's answers, then the agent. Close the catalogue with closeCatalogue() after the app. */
  stop(): Promise<void>;
  closeCatalogue(): Promise<void>;
}

export interface LocalControlOptions {
  readonly clock: Clock;
  readonly log: Logger;
  readonly version: string;
  /** Default DEFAULT_MAX_KEYS_PER_USER. */
  readonly maxKeysPerUser?: number;
  /** An open catalogue to use instead of DATA/control.db (closed by closeCatalogue()). */
  readonly catalogue?: Catalogue;
}

/**
 * startLocalControl opens the catalogue, adopts the local node, starts its
 * agent over the in-process transport and resolves once the node said
 * hello and its pending documents were sent (so what kova.db holds is
 * listed from the first request).
 */
export async function startLocalControl(services: Services, opts: LocalControlOptions): Promise<LocalControl> {
  const { clock, log } = opts;
  const { store, runtime, paths } = services.ctx;
  const catalogue = opts.catalogue ?? (await openLocalCatalogue(paths.dataDir, clock));
  let agent: NodeAgent | null = null;
  let dispatcher: Dispatcher | null = null;
  try {
    const node = await adoptLocalNode(catalogue, store, clock);
    // Keys made by `kova keys` while the server was down reach kova.db too.
    await mirrorKeys(catalogue, store);
    dispatcher = new Dispatcher(catalogue, clock, { waitMs: LOCAL_WAIT_MS, nodeTimeoutMs: NEVER_OFFLINE_MS }, log);
    const side = new NodeSide(catalogue, dispatcher, clock, { heartbeatIntervalMs: LOCAL_HEARTBEAT_MS, nodeTimeoutMs: NEVER_OFFLINE_MS });
    const transport = new InProcessTransport(side, catalogue, node.id, (err) =>
      log.warn({ err }, 'the local control plane failed; retrying'),
    );
    agent = new NodeAgent(services, transport, log, {
      version: opts.version,
      runtime: runtime.kind,
      stateSync: LOCAL_STATE_SYNC,
      offsiteTarget: services.offsite.target ? targetIdentity(services.offsite.target) : null,
    });
    agent.start();
    await Promise.race([agent.connected, agent.done]);
    await agent.sync.flush();
    const backend = new ControlBackend(catalogue, dispatcher, clock, NEVER_OFFLINE_MS, { onlyNode: node.id, showNode: false });
    const keys = new CatalogueKeys(catalogue, clock, opts.maxKeysPerUser);
    const a = agent;
    const d = dispatcher;
    return {
      catalogue,
      keys,
      node,
      agent: a,
      deps: {
        keys: new LocalKeys(keys, catalogue, store),
        deployments: {
          ...withoutRecover(backend.deployments),
          // The snapshot health depends on the time, not only on the rows: read where the schedule lives.
          extras: async (d) => {
            const extras = await backend.deployments.extras(d);
            return d.status === 'active' ? { ...extras, snapshotHealth: snapshotHealth(store, d.id, clock.now()) } : extras;
          },
        },
        snapshots: backend.snapshots,
        restores: backend.restores,
        settings: backend.settings,
        browse: services.browse,
        verifications: services.verifications,
        webhooks: services.webhooks,
      },
      async settle() {
        await a.executor.idle();
        await a.sync.checkLive();
        await a.sync.flush();
      },
      async stop() {
        await d.stop();
        a.stop();
      },
      closeCatalogue: () => catalogue.close(),
    };
  } catch (err) {
    agent?.stop();
    await dispatcher?.stop();
    await catalogue.close();
    throw err;
  }
}
