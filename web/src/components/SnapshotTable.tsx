/** SnapshotTable: a deployment's snapshots, newest first (cards on narrow screens). */
import type { Snapshot } from '../api';
import { type SnapshotActions, SnapshotRow } from './SnapshotRow';

export function SnapshotTable({ snapshots, actions }: { snapshots: readonly Snapshot[]; actions: SnapshotActions }) {
  const sorted = [...snapshots].sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt));
  return (
    <div className="table-wrap">
      <table className="table table-cards" aria-label="Snapshots">
        <thead>
          <tr>
            <th scope="col">Snapshot</th>
            <th scope="col">Status</th>
            <th scope="col">Size</th>
            <th scope="col">Type</th>
            <th scope="col">Created</th>
            <th scope="col">Consistency</th>
            <th scope="col">
              <span className="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {sorted.map((s) => (
            <SnapshotRow key={s.id} snapshot={s} actions={actions} />
          ))}
        </tbody>
      </table>
    </div>
  );
}
