/**
 * state-sync: keeps the control plane's catalogue in step with this node,
 * by whole documents (network/protocol.ts, DeploymentState).
 *
 * Every change to a deployment's rows (deployment, settings, snapshots,
 * restores, jobs, off-node copies and setting, checks of its stored data
 * and their schedule) bumps its version in `sync_versions`, by SQLite triggers
 * (db/migrations.ts), in the transaction that made the change. The live
 * part (service states, volume bytes) is not in the database: checkLive()
 * compares it with the digest last counted, every heartbeat, and bumps the
 * version when it changed. flush() sends the document of every deployment
 * whose version the control plane has not acknowledged, in batches, and
 * records the acknowledged versions in SQLite: after a restart only what
 * was never acknowledged is sent again, and while the control plane cannot
 * be reached the versions simply keep growing until it can.
 *
 * Throttling: a deployment whose only changes since its last acknowledged
 * version are progress figures is sent at most once per
 * `progressIntervalMs`; any other change is sent on the next flush. A
 * document sent and not acknowledged is sent again after `resendAfterMs`.
 *
 * flush() calls are serialised (one batch in flight at a time); run() loops
 * them until stopped.
 */
import { createHash } from 'node:crypto';
import type { SnapshotSummary } from '../api/contract.js';
import { iso } from '../core/clock.js';
import { SyncVersions, type SyncVersion } from '../db/node-journal.js';
import type { OffsiteCopy } from '../db/offsite.js';
import type { Snapshot } from '../db/snapshots.js';
import type { DeploymentState, RestoreState, StateReply } from '../network/protocol.js';
import type { ServiceContext } from '../services/context.js';
import type { DeploymentService } from '../services/deployment-service.js';
import { currentOperation } from '../services/guards.js';
import { bounded } from '../services/settings-service.js';
import { verificationStatus } from '../services/verification-service.js';

/** withCopies adds each snapshot's off-node copy (null when it was never queued for one), as the API shows it. */
function withCopies(rows: readonly Snapshot[], copies: ReadonlyMap<string, OffsiteCopy>): Snapshot[] {
  return rows.map((s) => {
    const c = copies.get(s.id);
    return { ...s, offsite: c ? { status: c.status, copiedAt: c.copiedAt, error: c.error } : null };
  });
}

/** Sends documents to the control plane; resolves to what it acknowledged. */
export type SendState = (docs: readonly DeploymentState[]) => Promise<StateReply['acked']>;

export interface StateSyncOptions {
  /** Smallest gap between two progress-only documents of one deployment. Default 500 ms (about 2 a second). */
  readonly progressIntervalMs?: number;
  /** A document sent and not acknowledged is sent again after this long. Default 5 s. */
  readonly resendAfterMs?: number;
  /** Documents per request. Default 50. */
  readonly batchSize?: number;
  /** How often run() looks for changes. Default 250 ms. */
  readonly pollMs?: number;
}

export const STATE_SYNC_DEFAULTS = { progressIntervalMs: 500, resendAfterMs: 5_000, batchSize: 50, pollMs: 250 } as const;

export class StateSync {
  readonly versions: SyncVersions;
  private readonly opts: Required<StateSyncOptions>;
  /** Per deployment: when its last document was sent, and its version. */
  private readonly sent = new Map<string, { at: number; version: number }>();
  private flushing: Promise<number> | null = null;
  private wake: (() => void) | null = null;
  private stopped = false;

  constructor(
    private readonly ctx: ServiceContext,
    private readonly deployments: DeploymentService,
    private readonly send: SendState,
    opts: StateSyncOptions = {},
    /** The identity of the node's off-node target (targetIdentity), carried in every document; null: none. */
    private readonly offsiteTarget: string | null = null,
  ) {
    this.versions = new SyncVersions(ctx.store.db);
    const d = STATE_SYNC_DEFAULTS;
    this.opts = {
      progressIntervalMs: opts.progressIntervalMs ?? d.progressIntervalMs,
      resendAfterMs: opts.resendAfterMs ?? d.resendAfterMs,
      batchSize: opts.batchSize ?? d.batchSize,
      pollMs: opts.pollMs ?? d.pollMs,
    };
  }

  /**
   * document builds a deployment's state now (null when there is no such
   * deployment). The version is read with the rows, in one transaction,
   * after the live part: a document never carries rows older than its version.
   */
  async document(depId: string): Promise<DeploymentState | null> {
    const { store } = this.ctx;
    const first = store.deployments.get(depId);
    if (!first) return null;
    const extras = await this.deployments.extras(first);
    const offsite = this.ctx.offsite?.configured ? this.ctx.offsite : null;
    return store.tx(() => {
      const d = store.deployments.get(depId)!;
      const restores: RestoreState[] = store.restores.list(depId).map((r) => {
        const { journal: _journal, ...rest } = r;
        return rest;
      });
      const stats = store.snapshots.storage(depId);
      const last = store.snapshots.latestReady(depId);
      const snapshotSummary: SnapshotSummary = { ...stats, lastSnapshotAt: last ? iso(last.createdAt) : null };
      const active = d.status === 'active';
      return {
        deployment: d,
        version: this.versions.get(depId)?.version ?? 0,
        // As the settings service shows them: a schedule an older version stored past the rules is brought within them.
        settings: {
          ...bounded(store.settings.get(depId), this.ctx.clock.now()),
          offsite: offsite ? { enabled: offsite.enabledFor(depId) } : null,
        },
        snapshots: offsite ? withCopies(store.snapshots.list(depId), store.offsite.forDeployment(depId)) : store.snapshots.list(depId),
        offsiteTarget: this.offsiteTarget,
        restores,
        operation: active ? currentOperation(store, depId) : null,
        services: active ? (extras.services ?? []) : [],
        volumeBytes: active ? (extras.volumeBytes ?? {}) : {},
        snapshotSummary,
        verification: active ? verificationStatus(store, depId) : null,
      };
    });
  }

  /** due lists the deployments whose document should be sent now (see the throttling rules above). */
  due(): SyncVersion[] {
    const now = this.ctx.clock.now();
    return this.versions.unacked().filter((v) => {
      const last = this.sent.get(v.deploymentId);
      if (!last) return true;
      if (last.version >= v.version) return now - last.at >= this.opts.resendAfterMs;
      if (v.urgentVersion > last.version) return true;
      return now - last.at >= this.opts.progressIntervalMs;
    });
  }

  /**
   * checkLive compares each active deployment's live part (service states,
   * volume bytes) with the digest last counted and bumps its version when it
   * changed. Called every heartbeat.
   */
  async checkLive(): Promise<void> {
    const { store } = this.ctx;
    for (const d of store.deployments.listActive()) {
      const extras = await this.deployments.extras(d);
      const hash = createHash('sha256')
        .update(
          JSON.stringify([
            (extras.services ?? []).map((s) => [s.name, s.state, s.startedAt]),
            Object.entries(extras.volumeBytes ?? {}).sort(),
          ]),
        )
        .digest('hex')
        .slice(0, 32);
      if (this.versions.get(d.id)?.liveHash !== hash) this.versions.liveChanged(d.id, hash);
    }
  }

  /** flush sends every due document (in batches) and records what was acknowledged; returns how many were sent. */
  flush(): Promise<number> {
    if (this.flushing) return this.flushing.then(() => this.flush());
    this.flushing = this.flushOnce().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  private async flushOnce(): Promise<number> {
    const docs: DeploymentState[] = [];
    for (const v of this.due()) {
      const doc = await this.document(v.deploymentId);
      if (doc) docs.push(doc);
      // Rows of a deployment this node does not have (a job of one long gone): nothing to send.
      else this.versions.ack(v.deploymentId, v.version);
    }
    for (let i = 0; i < docs.length; i += this.opts.batchSize) {
      const batch = docs.slice(i, i + this.opts.batchSize);
      const at = this.ctx.clock.now();
      for (const d of batch) this.sent.set(d.deployment.id, { at, version: d.version });
      const acked = await this.send(batch);
      this.ctx.store.tx(() => {
        for (const a of acked) this.versions.ack(a.deploymentId, a.version);
      });
    }
    return docs.length;
  }

  /** poke makes run() flush now instead of at its next poll (after an operation, say). */
  poke(): void {
    this.wake?.();
  }

  /**
   * run flushes every `pollMs` (or when poked) until stop(). A send that
   * fails is tried again on the next round; `onError` decides whether an
   * error ends the loop (returning true) or is only logged.
   */
  async run(onError: (err: unknown) => boolean): Promise<void> {
    while (!this.stopped) {
      try {
        await this.flush();
      } catch (err) {
        if (onError(err)) return;
      }
      if (this.stopped) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.opts.pollMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
  }

  stop(): void {
    this.stopped = true;
    this.wake?.();
  }
}
