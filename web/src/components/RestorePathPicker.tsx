/**
 * RestorePathPicker: the restore dialog's small chooser of a snapshot's
 * files and folders. It lists a folder of the snapshot (the root lists
 * services, a service its volumes), opens folders one level at a time, and
 * checks entries; checked paths are shown as the files API names them
 * ("app/data/db/"). A service itself can't be checked (choose its volumes).
 */
import { useEffect, useState } from 'react';
import { api, errorMessage, isAbort, type FileEntry } from '../api';

export function RestorePathPicker({
  deploymentId,
  snapshotId,
  selected,
  onChange,
}: {
  deploymentId: string;
  snapshotId: string;
  selected: readonly string[];
  onChange: (paths: string[]) => void;
}) {
  const [dir, setDir] = useState('');
  const [entries, setEntries] = useState<FileEntry[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const ctl = new AbortController();
    setEntries(null);
    setError(null);
    api.restorePickerEntries(deploymentId, snapshotId, dir, ctl.signal).then(setEntries, (err: unknown) => {
      if (!isAbort(err)) setError(errorMessage(err));
    });
    return () => ctl.abort();
  }, [deploymentId, snapshotId, dir]);

  const depth = dir === '' ? 0 : dir.split('/').length;
  const crumbs = dir === '' ? [] : dir.split('/');
  const toggle = (p: string, on: boolean) => onChange(on ? [...selected, p] : selected.filter((s) => s !== p));

  return (
    <div className="path-picker">
      <nav className="path-picker-crumbs" aria-label="Folder">
        <button type="button" className="link-button" onClick={() => setDir('')} disabled={dir === ''}>
          snapshot
        </button>
        {crumbs.map((c, i) => (
          <span key={i}>
            {' / '}
            <button
              type="button"
              className="link-button"
              onClick={() => setDir(crumbs.slice(0, i + 1).join('/'))}
              disabled={i === crumbs.length - 1}
            >
              {c}
            </button>
          </span>
        ))}
      </nav>
      {error && <p className="field-error">{error}</p>}
      {!entries && !error && <p className="muted">Loading…</p>}
      {entries && (
        <ul className="path-picker-list" aria-label="Files and folders">
          {entries.length === 0 && <li className="muted">This folder is empty.</li>}
          {entries.map((e) => {
            const full = dir === '' ? e.name : `${dir}/${e.name}`;
            const shown = e.type === 'dir' ? `${full}/` : full;
            const checkable = depth >= 1;
            return (
              <li key={e.name}>
                {checkable ? (
                  <label className="check">
                    <input type="checkbox" checked={selected.includes(shown)} onChange={(ev) => toggle(shown, ev.target.checked)} />
                    <span>{e.type === 'dir' ? `${e.name}/` : e.name}</span>
                  </label>
                ) : (
                  <span>{e.name}/</span>
                )}
                {e.type === 'dir' && (
                  <button type="button" className="link-button" onClick={() => setDir(full)} aria-label={`Open ${e.name}`}>
                    open
                  </button>
                )}
              </li>
            );
          })}
        </ul>
      )}
      <p className="hint" aria-live="polite">
        {selected.length === 0 ? 'Nothing chosen yet.' : `Chosen: ${selected.join(', ')}`}
      </p>
    </div>
  );
}
