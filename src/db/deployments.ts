/** deployments: a user's deployments, their SDL and its parsed manifest. */
import type { Manifest } from '../sdl/types.js';
import { Table } from './table.js';

export type DeploymentStatus = 'active' | 'closed';

export interface Deployment {
  readonly id: string;
  readonly userId: string;
  readonly name: string;
  readonly sdl: string;
  readonly manifest: Manifest;
  readonly status: DeploymentStatus;
  readonly clonedFrom: string | null;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly closedAt: number | null;
}

interface Row {
  id: string;
  user_id: string;
  name: string;
  sdl: string;
  manifest: string;
  status: DeploymentStatus;
  cloned_from: string | null;
  created_at: number;
  updated_at: number;
  closed_at: number | null;
}

const toDeployment = (r: Row): Deployment => ({
  id: r.id,
  userId: r.user_id,
  name: r.name,
  sdl: r.sdl,
  manifest: JSON.parse(r.manifest) as Manifest,
  status: r.status,
  clonedFrom: r.cloned_from,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  closedAt: r.closed_at,
});

export class Deployments extends Table {
  insert(d: Deployment): void {
    this.db
      .prepare(
        `INSERT INTO deployments (id, user_id, name, sdl, manifest, status, cloned_from, created_at, updated_at, closed_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(d.id, d.userId, d.name, d.sdl, JSON.stringify(d.manifest), d.status, d.clonedFrom, d.createdAt, d.updatedAt, d.closedAt);
  }

  get(id: string): Deployment | undefined {
    const r = this.q('SELECT * FROM deployments WHERE id = ?').get(id) as Row | undefined;
    return r && toDeployment(r);
  }

  /** forUser returns the deployment only if `userId` owns it. */
  forUser(id: string, userId: string): Deployment | undefined {
    const r = this.q('SELECT * FROM deployments WHERE id = ? AND user_id = ?').get(id, userId) as Row | undefined;
    return r && toDeployment(r);
  }

  listByUser(userId: string): Deployment[] {
    return (this.q('SELECT * FROM deployments WHERE user_id = ? ORDER BY created_at DESC, id').all(userId) as Row[]).map(toDeployment);
  }

  /** list returns every deployment, closed ones included, oldest first. */
  list(): Deployment[] {
    return (this.q('SELECT * FROM deployments ORDER BY created_at, id').all() as Row[]).map(toDeployment);
  }

  listActive(): Deployment[] {
    return (this.q("SELECT * FROM deployments WHERE status = 'active' ORDER BY created_at").all() as Row[]).map(toDeployment);
  }

  updateSdl(id: string, name: string, sdl: string, manifest: Manifest, at: number): void {
    this.db
      .prepare('UPDATE deployments SET name = ?, sdl = ?, manifest = ?, updated_at = ? WHERE id = ?')
      .run(name, sdl, JSON.stringify(manifest), at, id);
  }

  close(id: string, at: number): void {
    this.q("UPDATE deployments SET status = 'closed', closed_at = ?, updated_at = ? WHERE id = ?").run(at, at, id);
  }
}
