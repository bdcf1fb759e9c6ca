/**
 * SettingsTab: automatic snapshots: on/off, interval, retention and the
 * calendar tiers; the server's errors shown at their field. While the
 * retention fields differ from the saved ones, the server's preview says in
 * plain words what the new policy keeps and which existing automatic
 * snapshots it would delete (the newest answer wins; older ones are aborted).
 */
import { type FormEvent, useEffect, useId, useState } from 'react';
import { ApiError, api, errorMessage, isAbort, type Deployment, type RetentionPreview, type SnapshotSettings } from '../api';
import { Callout } from '../components/Callout';
import { ErrorState } from '../components/ErrorState';
import { FieldError } from '../components/FieldError';
import { LoadingCard } from '../components/LoadingCard';
import { RelativeTime } from '../components/RelativeTime';
import { Spinner } from '../components/Spinner';
import { formatExact } from '../format';
import { NODE_BANNER_ID, nodeUnavailable } from '../nodes';
import { useResource } from '../hooks/useResource';
import { useSession } from '../session';
import { useToast } from '../toast';
import { TIER_MAX, retentionValue, tierValue } from '../validate';
import { ClosedNotice } from './ClosedNotice';

export function SettingsTab({ deployment }: { deployment: Deployment }) {
  if (deployment.status !== 'active') return <ClosedNotice what="snapshot settings" />;
  return <SettingsForm deploymentId={deployment.id} noNode={nodeUnavailable(deployment)} />;
}

type TierField = 'keepHourly' | 'keepDaily' | 'keepWeekly' | 'keepMonthly';
type Tiers = Record<TierField, string>;

/** The calendar tiers, in the order shown, with their label and the period they count. */
const TIERS: ReadonlyArray<readonly [TierField, string, string]> = [
  ['keepHourly', 'Hourly', 'hours'],
  ['keepDaily', 'Daily', 'days'],
  ['keepWeekly', 'Weekly', 'weeks'],
  ['keepMonthly', 'Monthly', 'months'],
];

const tiersOf = (s: SnapshotSettings): Tiers => ({
  keepHourly: s.keepHourly === null ? '' : String(s.keepHourly),
  keepDaily: s.keepDaily === null ? '' : String(s.keepDaily),
  keepWeekly: s.keepWeekly === null ? '' : String(s.keepWeekly),
  keepMonthly: s.keepMonthly === null ? '' : String(s.keepMonthly),
});

/** How long typing must pause before the preview is asked for. */
const PREVIEW_DELAY_MS = 300;

interface Errors extends Partial<Record<TierField, string>> {
  interval?: string;
  retention?: string;
  form?: string;
}

/** `noNode`: why saving cannot run now (the node keeps the schedule and is offline), or null. */
function SettingsForm({ deploymentId, noNode }: { deploymentId: string; noNode: string | null }) {
  const id = useId();
  const toast = useToast();
  const { me } = useSession();
  const res = useResource((signal) => api.getSettings(deploymentId, signal), [deploymentId]);
  const [enabled, setEnabled] = useState(false);
  const [offsite, setOffsite] = useState(false);
  const [interval, setIntervalText] = useState('');
  const [retention, setRetention] = useState('');
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState<SnapshotSettings | null>(null);
  const [tiers, setTiers] = useState<Tiers>({ keepHourly: '', keepDaily: '', keepWeekly: '', keepMonthly: '' });
  const [preview, setPreview] = useState<RetentionPreview | null>(null);

  const current = saved ?? res.data;
  useEffect(() => {
    if (!res.data) return;
    setEnabled(res.data.enabled);
    setOffsite(res.data.offsite?.enabled ?? false);
    setIntervalText(res.data.interval);
    setRetention(String(res.data.retention));
    setTiers(tiersOf(res.data));
  }, [res.data]);

  // The retention part of the form, when it is valid and differs from the saved settings: what the preview is asked about.
  const keepLast = retentionValue(retention);
  const tierValues = TIERS.map(([f]) => [f, tierValue(tiers[f])] as const);
  const retentionValid = keepLast !== null && keepLast >= 1 && keepLast <= 100 && tierValues.every(([, v]) => v !== undefined);
  const retentionDirty =
    current !== undefined &&
    (retention.trim() !== String(current.retention) || TIERS.some(([f]) => (tierValue(tiers[f]) ?? null) !== current[f]));
  const previewKey = retentionValid && retentionDirty ? JSON.stringify([keepLast, ...tierValues.map(([, v]) => v)]) : null;
  useEffect(() => {
    setPreview(null);
    if (previewKey === null) return;
    const [last, keepHourly, keepDaily, keepWeekly, keepMonthly] = JSON.parse(previewKey) as [number, ...(number | null)[]];
    const ctl = new AbortController();
    const timer = setTimeout(() => {
      api
        .previewSettings(deploymentId, { retention: last, keepHourly, keepDaily, keepWeekly, keepMonthly }, ctl.signal)
        .then(setPreview, (err: unknown) => {
          // Saving answers with the same validation: without a preview, the form still explains.
          if (!isAbort(err)) setPreview(null);
        });
    }, PREVIEW_DELAY_MS);
    return () => {
      clearTimeout(timer);
      ctl.abort();
    };
  }, [deploymentId, previewKey]);

  if (!current) {
    return res.error ? (
      <ErrorState error={res.error} onRetry={res.reload} title="Could not load the settings" />
    ) : (
      <LoadingCard rows={3} label="Loading settings" />
    );
  }
  const minInterval = current.minInterval || me.server.minSnapshotInterval;
  const offsiteDirty = current.offsite !== null && offsite !== current.offsite.enabled;
  const dirty = enabled !== current.enabled || interval.trim() !== current.interval || retentionDirty || offsiteDirty;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const next: Errors = {};
    const keep = retentionValue(retention);
    if (interval.trim() === '') next.interval = 'Enter an interval, like 6h.';
    if (keep === null) next.retention = 'retention must be an integer from 1 to 100';
    for (const [f, v] of tierValues) if (v === undefined) next[f] = tierMessage(f);
    setErrors(next);
    if (Object.values(next).some(Boolean)) return;
    setBusy(true);
    try {
      const s = await api.putSettings(deploymentId, {
        enabled,
        interval: interval.trim(),
        retention: keep ?? undefined,
        ...Object.fromEntries(tierValues),
        ...(current.offsite !== null ? { offsite: { enabled: offsite } } : {}),
      });
      setSaved(s);
      setOffsite(s.offsite?.enabled ?? false);
      setIntervalText(s.interval);
      setRetention(String(s.retention));
      setTiers(tiersOf(s));
      toast(s.enabled ? `Automatic snapshots every ${s.interval}, keeping ${s.retention}.` : 'Automatic snapshots are off.', 'success');
    } catch (err) {
      const msg = errorMessage(err);
      const code = err instanceof ApiError ? err.code : '';
      const tier = TIERS.find(([f]) => msg.startsWith(f));
      if (code === 'INVALID_INTERVAL' || /interval/.test(msg)) setErrors({ interval: msg });
      else if (tier) setErrors({ [tier[0]]: msg });
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
            Taken on a schedule. After each one, the automatic snapshots the retention no longer keeps are deleted; manual snapshots are
            never deleted automatically.
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

      {current.offsite !== null && (
        <div className="setting-row">
          <div className="setting-text">
            <label htmlFor={`${id}-offsite`} className="setting-label">
              Copy snapshots off the node
            </label>
            <p className="hint">
              {offsite
                ? 'On: every snapshot is also copied, encrypted, to the off-node storage, so it survives the loss of this node.'
                : 'Off: snapshots stay on this node only; copies made so far are kept.'}
            </p>
          </div>
          <label className="switch">
            <input id={`${id}-offsite`} type="checkbox" role="switch" checked={offsite} onChange={(e) => setOffsite(e.target.checked)} />
            <span className="switch-track" aria-hidden="true">
              <span className="switch-thumb" />
            </span>
          </label>
        </div>
      )}

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
            How many of the most recent automatic snapshots to keep, from 1 to 100.
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

      {TIERS.map(([field, label, periods]) => (
        <div className="setting-row" key={field}>
          <div className="setting-text">
            <label htmlFor={`${id}-${field}`} className="setting-label">
              {label}
            </label>
            <p className="hint" id={`${id}-${field}-hint`}>
              Also keep the newest automatic snapshot of each of the last N {periods} (UTC) that had one. Optional: leave empty for none; 0
              to {TIER_MAX}.
            </p>
          </div>
          <div className="setting-control">
            <input
              id={`${id}-${field}`}
              className="input input-narrow"
              inputMode="numeric"
              placeholder="not set"
              value={tiers[field]}
              onChange={(e) => {
                const v = e.target.value;
                setTiers((t) => ({ ...t, [field]: v }));
                setErrors((x) => ({ ...x, [field]: undefined }));
              }}
              autoComplete="off"
              aria-invalid={errors[field] ? true : undefined}
              aria-describedby={`${id}-${field}-hint${errors[field] ? ` ${id}-${field}-error` : ''}`}
            />
            <FieldError id={`${id}-${field}-error`} message={errors[field]} />
          </div>
        </div>
      ))}

      <div className="setting-row setting-row-wide">
        <div className="setting-text">
          <span className="setting-label">What is kept</span>
          <p className="hint" data-testid="retention-description">
            {!retentionDirty
              ? current.retentionDescription
              : !retentionValid
                ? 'Fix the retention fields to see what the new settings keep.'
                : (preview?.description ?? 'Checking the new retention…')}
          </p>
          {retentionDirty && preview && <PruneList preview={preview} enabled={enabled} />}
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
            setTiers(tiersOf(current));
            setErrors({});
          }}
        >
          Discard changes
        </button>
        <button
          type="submit"
          className="btn btn-primary"
          disabled={busy || noNode !== null}
          {...(noNode ? { title: noNode, 'aria-describedby': NODE_BANNER_ID } : {})}
        >
          {busy && <Spinner label="Saving" size={14} />}
          Save settings
        </button>
      </div>
    </form>
  );
}

/** tierMessage is the API's message for a tier it would reject. */
function tierMessage(field: TierField): string {
  return `${field} must be an integer from 0 to ${TIER_MAX}, or null for none`;
}

/** PruneList says which existing automatic snapshots the previewed policy would delete, or that none would be. */
function PruneList({ preview, enabled }: { preview: RetentionPreview; enabled: boolean }) {
  const n = preview.prune.length;
  if (n === 0) {
    return (
      <Callout tone="info" role="status">
        No existing automatic snapshot would be deleted: the new retention keeps all {preview.keep.length} of them.
      </Callout>
    );
  }
  return (
    <Callout
      tone="warning"
      role="status"
      title={`Saving will delete ${n} automatic snapshot${n === 1 ? '' : 's'} when the next automatic snapshot is taken:`}
    >
      <ul className="plain-list" aria-label="Automatic snapshots to be deleted" data-testid="retention-prune">
        {preview.prune.map((s) => (
          <li key={s.id} data-snapshot-id={s.id}>
            <code>{s.id}</code> taken <RelativeTime iso={s.createdAt} /> ({formatExact(s.createdAt)})
          </li>
        ))}
      </ul>
      <p>
        {preview.keep.length} automatic snapshot{preview.keep.length === 1 ? ' stays' : 's stay'}; manual snapshots are never deleted.
        {enabled ? '' : ' Automatic snapshots are off: nothing is deleted until they are turned on.'}
      </p>
    </Callout>
  );
}
