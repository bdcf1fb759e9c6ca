/**
 * deps: what the HTTP layer needs from the rest of the system. buildApp takes
 * this object, so tests build the app around real services on a temp data
 * dir and call it with inject(), without a socket.
 *
 * The routes see the workflows through the narrow interfaces below, whose
 * methods may answer now or later (`Awaitable`): the all-in-one's services
 * (`kova serve`) answer synchronously and satisfy them unchanged; the
 * control plane (src/control/) answers from its catalogue and its nodes,
 * asynchronously. The routes await every call either way.
 */
import type { FastifyRateLimitOptions, FastifyRateLimitStore } from '@fastify/rate-limit';
import type { Clock } from '../core/clock.js';
import type { Readable } from 'node:stream';
import type { BrowseService, ByteRange, SnapshotReader } from '../services/browse-service.js';
import type { DiskHealth } from '../services/disk-health.js';
import type { HashGate, NewKey, Principal } from '../services/keys.js';
import type { Metrics } from '../services/metrics.js';
import type { ApiKey, Deployment, Verification } from '../services/models.js';
import type { SelectionRequest } from '../services/restore-paths.js';
import type { RestorePlanResult, RestoreService } from '../services/restore-service.js';
import type { RetentionPreview, SettingsInput, SettingsService } from '../services/settings-service.js';
import type { SnapshotService } from '../services/snapshot-service.js';
import type { VerificationStatus } from '../services/verification-service.js';
import type { WebhookService } from '../services/webhooks/service.js';
import type { DeploymentExtras } from '../services/views.js';
import type { NodeSummary, Recovery } from './contract.js';

/** A value now, or a promise of it. */
export type Awaitable<T> = T | Promise<T>;

// The records the API shows, named through the services (the API does not import the database layer).
type Snapshot = ReturnType<SnapshotService['get']>;
type Restore = ReturnType<RestoreService['get']>;
type SnapshotSettings = ReturnType<SettingsService['get']>;

/** Deployments as the routes use them (src/services/deployment-service.ts in the all-in-one). */
export interface DeploymentsApi {
  create(userId: string, sdl: string, name: unknown): Awaitable<Deployment>;
  /** A user's deployments, newest first. */
  list(userId: string): Awaitable<Deployment[]>;
  get(userId: string, id: string): Awaitable<Deployment>;
  update(userId: string, id: string, sdl: string, snapshot: boolean): Awaitable<Deployment>;
  restart(userId: string, id: string): Awaitable<Deployment>;
  close(userId: string, id: string): Awaitable<Deployment>;
  clone(userId: string, id: string, snapId: string, name: unknown): Awaitable<Deployment>;
  /**
   * Network mode: run a deployment whose node is offline or removed on another node, from its off-node copy.
   * Absent (the all-in-one): POST …/recover does not exist (404 NOT_FOUND).
   */
  recover?(userId: string, id: string, snapshotId: string | undefined): Promise<{ deployment: Deployment; recovery: Recovery }>;
  /** What a deployment's view shows besides its row. */
  extras(d: Deployment): Awaitable<DeploymentExtras>;
}

export interface SnapshotsApi {
  /** A deployment's snapshots, newest first. */
  list(userId: string, depId: string): Awaitable<Snapshot[]>;
  get(userId: string, depId: string, snapId: string): Awaitable<Snapshot>;
  create(userId: string, depId: string, label: unknown): Awaitable<Snapshot>;
  delete(userId: string, depId: string, snapId: string): Awaitable<void>;
}

export interface RestoresApi {
  get(userId: string, depId: string, restoreId: string): Awaitable<Restore>;
  /** A deployment's restores, newest first. */
  list(userId: string, depId: string): Awaitable<Restore[]>;
  plan(userId: string, depId: string, snapId: string, wanted?: SelectionRequest): Awaitable<RestorePlanResult>;
  request(userId: string, depId: string, snapId: string, safetySnapshot: boolean, wanted?: SelectionRequest): Awaitable<Restore>;
}

export interface SettingsApi {
  get(userId: string, depId: string): Awaitable<SnapshotSettings>;
  put(userId: string, depId: string, input: SettingsInput): Awaitable<SnapshotSettings>;
  preview(userId: string, depId: string, input: SettingsInput): Awaitable<RetentionPreview>;
}

export interface KeysApi {
  /** Who a bearer token belongs to, or null; `gate` runs before each slow check (see services/keys.ts). */
  authenticate(token: string, gate?: HashGate): Awaitable<Principal | null>;
  create(userId: string, label: string | null): Awaitable<NewKey>;
  list(userId: string): Awaitable<ApiKey[]>;
  revoke(prefixOrToken: string, userId?: string): Awaitable<ApiKey>;
}

/**
 * One snapshot held open for one request (routes/files.ts): the
 * all-in-one's SnapshotReader, or in network mode one whose every call is
 * answered by the deployment's node (src/control/relay-browse.ts).
 */
export interface BrowseReader {
  list: SnapshotReader['list'];
  file(
    components: readonly Buffer[],
  ): Promise<{ node: { readonly size: number }; name: string; stream(range: ByteRange | null): Readable }>;
  archive: SnapshotReader['archive'];
  close(): Promise<void>;
}

/** Browsing a ready snapshot (routes/files.ts): streams, so these are asynchronous everywhere. */
export interface BrowseApi {
  open(userId: string, depId: string, snapId: string): Promise<BrowseReader>;
  read<T>(userId: string, depId: string, snapId: string, fn: (r: BrowseReader) => Promise<T>): Promise<T>;
  diff: BrowseService['diff'];
}

/**
 * Checks of a deployment's stored data (services/verification-service.ts):
 * the all-in-one's service, or in network mode the deployment's node through
 * the control plane (src/control/verifications.ts).
 */
export interface VerificationsApi {
  request(userId: string, depId: string, full: boolean): Awaitable<Verification>;
  /** A deployment's checks, newest first, `limit` at a time, older than the check `before` when given. */
  list(userId: string, depId: string, limit: number, before?: string): Awaitable<Verification[]>;
  /** Where the checks stand; null when not known (a node that does not report it). */
  status(userId: string, depId: string): Awaitable<VerificationStatus | null>;
}

/** The nodes a control plane runs deployments on (network mode only). */
export interface NodesApi {
  /** Every node, for an admin (403 FORBIDDEN for anyone else). */
  list(userId: string): Promise<NodeSummary[]>;
}

/** The API's rate limits, each per minute (see rate-limit.ts). */
export interface Limits {
  readonly perKey: number;
  readonly perUser: number;
  readonly signInsPerPrefix: number;
  readonly signInsPerAddress: number;
}

/** The limits unless configured otherwise; a user's is USER_LIMIT_FACTOR times the per-key limit. */
export const DEFAULT_LIMITS: Omit<Limits, 'perUser'> = { perKey: 100, signInsPerPrefix: 10, signInsPerAddress: 30 };
export const USER_LIMIT_FACTOR = 3;

export interface AppConfig {
  readonly minSnapshotIntervalMs: number;
  /** Requests a minute per API key. */
  readonly rateLimitPerMinute: number;
  /** Requests a minute per user, all their keys together. Default USER_LIMIT_FACTOR × rateLimitPerMinute. */
  readonly userRateLimitPerMinute?: number;
  /** Scrypt checks of API keys a minute per key prefix, and per client address (see rate-limit.ts). */
  readonly signInsPerPrefix?: number;
  readonly signInsPerAddress?: number;
  readonly runtime: 'docker' | 'process';
  /** The bearer token GET /metrics takes; none: /metrics answers 401 to everyone. */
  readonly metricsToken?: string | null;
  readonly version: string;
  /** Built dashboard to serve at /, if present. */
  readonly webDir?: string | null;
}

export interface AppDeps {
  /** Webhooks; without them the /api/v1/webhooks routes are not served. */
  readonly webhooks?: WebhookService;
  readonly keys: KeysApi;
  readonly deployments: DeploymentsApi;
  readonly snapshots: SnapshotsApi;
  readonly restores: RestoresApi;
  readonly browse: BrowseApi;
  readonly settings: SettingsApi;
  /** The verifications routes and the snapshot list's `verification`; absent: not served (404), and null. */
  readonly verifications?: VerificationsApi;
  /** GET /api/v1/nodes; absent (the all-in-one): the route does not exist (404 NOT_FOUND). */
  readonly nodes?: NodesApi;
  readonly metrics: Metrics;
  /** The data directory's health for /healthz; without it /healthz reports ok. */
  readonly disk?: DiskHealth;
  /** Replaces /healthz's answer (the control plane reports its database); status 200 or 503. */
  readonly health?: () => Promise<{ readonly status: number; readonly body: Readonly<Record<string, unknown>> }>;
  /** Where rate-limit counts live; default an in-process ClockStore (rate-limit.ts). */
  readonly rateLimitStore?: new (options: FastifyRateLimitOptions) => FastifyRateLimitStore;
  readonly clock: Clock;
  readonly config: AppConfig;
}
