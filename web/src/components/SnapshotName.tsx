/** SnapshotName: a snapshot's label (or a placeholder) with its id beneath. */
import type { Snapshot } from '../api';

export function SnapshotName({ snapshot, showId = true }: { snapshot: Pick<Snapshot, 'id' | 'label'>; showId?: boolean }) {
  return (
    <span className="snap-name">
      {snapshot.label ? <span className="snap-label">{snapshot.label}</span> : <span className="snap-label is-empty">Unlabelled</span>}
      {showId && <code className="snap-id">{snapshot.id}</code>}
    </span>
  );
}
