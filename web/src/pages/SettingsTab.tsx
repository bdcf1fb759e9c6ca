/** SettingsTab: automatic snapshots: on/off, interval, retention; the server's errors shown at their field. */
import { type FormEvent, useEffect, useId, useState } from 'react';
import { ApiError, api, errorMessage, type Deployment, type SnapshotSettings } from '../api';
import { Callout } from '../components/Callout';
import { ErrorState } from '../components/ErrorState';
import { FieldError } from '../components/FieldError';
import { LoadingCard } from '../components/LoadingCard';
import { RelativeTime } from '../components/RelativeTime';
import { Spinner } from '../components/Spinner';
import { formatExact } from '../format';
import { useResource } from '../hooks/useResource';
import { useSession } from '../session';
import { useToast } from '../toast';
import { retentionValue } from '../validate';
import { ClosedNotice } from './ClosedNotice';

export function SettingsTab({ deployment }: { deployment: Deployment }) {
  if (deployment.status !== 'active') return <ClosedNotice what="snapshot settings" />;
  return <SettingsForm deploymentId={deployment.id} />;
}

interface Errors {
  interval?: string;
  retention?: string;
  form?: string;
}

function SettingsForm({ deploymentId }: { deploymentId: string }) {
  const id = useId();
  const toast = useToast();
  const { me } = useSession();
  const res = useResource((signal) => api.getSettings(deploymentId, signal), [deploymentId]);
  const [enabled, setEnabled] = useState(false);
  const [interval, setIntervalText] = useState('');
  const [retention, setRetention] = useState('');
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState<SnapshotSettings | null>(null);

  const current = saved ?? res.data;
  useEffect(() => {
    if (!res.data) return;
    setEnabled(res.data.enabled);
    setIntervalText(res.data.interval);
    setRetention(String(res.data.retention));
  }, [res.data]);

  if (!current) {
    return res.error ? (
      <ErrorState error={res.error} onRetry={res.reload} title="Could not load the settings" />
    ) : (
      <LoadingCard rows={3} label="Loading settings" />
    );
  }
  const minInterval = current.minInterval || me.server.minSnapshotInterval;
  const dirty = enabled !== current.enabled || interval.trim() !== current.interval || retention.trim() !== String(current.retention);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const next: Errors = {};
    const keep = retentionValue(retention);
    if (interval.trim() === '') next.interval = 'Enter an interval, like 6h.';
    if (keep === null) next.retention = 'retention must be an integer from 1 to 100';
    setErrors(next);
    if (next.interval || next.retention) return;
    setBusy(true);
    try {
      const s = await api.putSettings(deploymentId, { enabled, interval: interval.trim(), retention: keep ?? undefined });
      setSaved(s);
      setIntervalText(s.interval);
      setRetention(String(s.retention));
      toast(s.enabled ? `Automatic snapshots every ${s.interval}, keeping ${s.retention}.` : 'Automatic snapshots are off.', 'success');
    } catch (err) {
      const msg = errorMessage(err);
      const code = err instanceof ApiError ? err.code : '';
      if (code === 'INVALID_INTERVAL' || /interval/.test(msg)) setErrors({ interval: msg });
      else if (code === 'INVALID_RETENTION' || /retention/.test(msg)) setErrors({ retention: msg });
      else setErrors({ form: msg });
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="card settings" onSubmit={(e) => void submit(e)} noValidate aria-labelledby={`${id}-title`}>
      <div className="card-head">
        <div>
          <h3 id={`${id}-title`}>Automatic snapshots</h3>
          <p className="muted small">
            Taken on a schedule. When more than the retention count exist, the oldest automatic ones are pruned; manual snapshots are never
            deleted automatically.
          </p>
        </div>
      </div>

      <div className="setting-row">
        <div className="setting-text">
          <label htmlFor={`${id}-enabled`} className="setting-label">
            Take snapshots automatically
          </label>
          <p className="hint">{enabled ? 'On: a snapshot is taken every interval.' : 'Off: only manual snapshots are taken.'}</p>
        </div>
        <label className="switch">
          <input id={`${id}-enabled`} type="checkbox" role="switch" checked={enabled} onChange={(e) => setEnabled(e.target.checked)} />
          <span className="switch-track" aria-hidden="true">
            <span className="switch-thumb" />
          </span>
        </label>
      </div>

      <div className="setting-row">
        <div className="setting-text">
          <label htmlFor={`${id}-interval`} className="setting-label">
            Interval
          </label>
          <p className="hint" id={`${id}-interval-hint`}>
            Time between snapshots: a number and a unit s, m, h or d (30m, 6h, 24h, 7d). Minimum on this server:{' '}
            <strong>{minInterval}</strong>.
          </p>
        </div>
        <div className="setting-control">
          <input
            id={`${id}-interval`}
            className="input input-narrow mono"
            value={interval}
            onChange={(e) => {
              setIntervalText(e.target.value);
              setErrors((x) => ({ ...x, interval: undefined }));
            }}
            autoComplete="off"
            spellCheck={false}
            aria-invalid={errors.interval ? true : undefined}
            aria-describedby={`${id}-interval-hint${errors.interval ? ` ${id}-interval-error` : ''}`}
          />
          <FieldError id={`${id}-interval-error`} message={errors.interval} />
        </div>
      </div>

      <div className="setting-row">
        <div className="setting-text">
          <label htmlFor={`${id}-retention`} className="setting-label">
            Retention
          </label>
          <p className="hint" id={`${id}-retention-hint`}>
            How many automatic snapshots to keep, from 1 to 100.
          </p>
        </div>
        <div className="setting-control">
          <input
            id={`${id}-retention`}
            className="input input-narrow"
            inputMode="numeric"
            value={retention}
            onChange={(e) => {
              setRetention(e.target.value);
              setErrors((x) => ({ ...x, retention: undefined }));
            }}
            autoComplete="off"
            aria-invalid={errors.retention ? true : undefined}
            aria-describedby={`${id}-retention-hint${errors.retention ? ` ${id}-retention-error` : ''}`}
          />
          <FieldError id={`${id}-retention-error`} message={errors.retention} />
        </div>
      </div>

      <div className="setting-row">
        <div className="setting-text">
          <span className="setting-label">Next automatic snapshot</span>
        </div>
        <div className="setting-control setting-value" data-testid="next-run">
          {current.enabled && current.nextRunAt ? (
            <span title={formatExact(current.nextRunAt)}>
              <RelativeTime iso={current.nextRunAt} />
            </span>
          ) : (
            <span className="muted">{current.enabled ? 'being scheduled' : 'none: automatic snapshots are off'}</span>
          )}
        </div>
      </div>

      {errors.form && (
        <Callout tone="danger" role="alert">
          {errors.form}
        </Callout>
      )}
      <div className="form-actions">
        <button
          type="button"
          className="btn btn-secondary"
          disabled={!dirty || busy}
          onClick={() => {
            setEnabled(current.enabled);
            setIntervalText(current.interval);
            setRetention(String(current.retention));
            setErrors({});
          }}
        >
          Discard changes
        </button>
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy && <Spinner label="Saving" size={14} />}
          Save settings
        </button>
      </div>
    </form>
  );
}
