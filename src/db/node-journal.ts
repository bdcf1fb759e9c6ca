/**
 * node-journal: the tables only a network-mode node (`kova node`) uses.
 * `applied_operations` keeps the result of every operation id the node
 * applied (a repeat is answered from it); `sync_versions` holds, per
 * deployment, the version its rows' triggers bump (migrations.ts), the
 * version the control plane acknowledged and the digest of the live part
 * last counted as a change.
 */
import { Table } from './table.js';

export interface AppliedOperation {
  readonly id: string;
  readonly kind: string;
  readonly result: unknown;
  readonly appliedAt: number;
}

export class AppliedOperations extends Table {
  get(id: string): AppliedOperation | undefined {
    const r = this.q('SELECT * FROM applied_operations WHERE id = ?').get(id) as
      { id: string; kind: string; result: string; applied_at: number } | undefined;
    return r && { id: r.id, kind: r.kind, result: JSON.parse(r.result) as unknown, appliedAt: r.applied_at };
  }

  /** record keeps an operation's result; call it in the transaction that applied it. */
  record(id: string, kind: string, result: unknown, at: number): void {
    this.q('INSERT INTO applied_operations (id, kind, result, applied_at) VALUES (?, ?, ?, ?)').run(id, kind, JSON.stringify(result), at);
  }
}

export interface SyncVersion {
  readonly deploymentId: string;
  readonly version: number;
  /** The version of the last change that was not progress alone. */
  readonly urgentVersion: number;
  readonly acked: number;
  readonly liveHash: string | null;
}

interface SyncRow {
  deployment_id: string;
  version: number;
  urgent_version: number;
  acked: number;
  live_hash: string | null;
}

const toSync = (r: SyncRow): SyncVersion => ({
  deploymentId: r.deployment_id,
  version: r.version,
  urgentVersion: r.urgent_version,
  acked: r.acked,
  liveHash: r.live_hash,
});

export class SyncVersions extends Table {
  get(deploymentId: string): SyncVersion | undefined {
    const r = this.q('SELECT * FROM sync_versions WHERE deployment_id = ?').get(deploymentId) as SyncRow | undefined;
    return r && toSync(r);
  }

  /** unacked lists the deployments whose version the control plane has not acknowledged yet. */
  unacked(): SyncVersion[] {
    return (this.q('SELECT * FROM sync_versions WHERE version > acked ORDER BY deployment_id').all() as SyncRow[]).map(toSync);
  }

  /** ack records that the control plane holds `version` (never moving backwards). */
  ack(deploymentId: string, version: number): void {
    this.q('UPDATE sync_versions SET acked = max(acked, ?) WHERE deployment_id = ?').run(version, deploymentId);
  }

  /**
   * resend marks a deployment's document as not acknowledged (creating its
   * row if it has none), so the next flush sends it: for a catalogue that
   * has never held it.
   */
  resend(deploymentId: string): void {
    this.q(
      `INSERT INTO sync_versions (deployment_id, version, urgent_version) VALUES (?, 1, 1)
       ON CONFLICT (deployment_id) DO UPDATE SET acked = 0, urgent_version = version`,
    ).run(deploymentId);
  }

  /** liveChanged records a new digest of the live part and bumps the version (an urgent change). */
  liveChanged(deploymentId: string, hash: string): void {
    this.q(
      `INSERT INTO sync_versions (deployment_id, version, urgent_version, live_hash) VALUES (?, 1, 1, ?)
       ON CONFLICT (deployment_id) DO UPDATE SET version = version + 1, urgent_version = version + 1, live_hash = excluded.live_hash`,
    ).run(deploymentId, hash);
  }
}
