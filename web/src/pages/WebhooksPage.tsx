/**
 * WebhooksPage: the user's webhooks: add one (its signing secret is shown
 * once, right after), delete one, and read a webhook's delivery log.
 */
import { useId, useState } from 'react';
import { ApiError, type Webhook, api, errorMessage } from '../api';
import { Callout } from '../components/Callout';
import { CopyButton } from '../components/CopyButton';
import { EmptyState } from '../components/EmptyState';
import { ErrorState } from '../components/ErrorState';
import { FieldError } from '../components/FieldError';
import { Icon } from '../components/Icon';
import { LoadingCard } from '../components/LoadingCard';
import { RelativeTime } from '../components/RelativeTime';
import { StatusBadge } from '../components/StatusBadge';
import { useResource } from '../hooks/useResource';
import { useToast } from '../toast';

/** The events a webhook may ask for, as the API names them (docs/api.md), with what each means. */
const EVENTS: ReadonlyArray<readonly [string, string]> = [
  ['snapshot.failed', 'A snapshot failed'],
  ['snapshot.missed', 'An automatic snapshot is overdue'],
  ['restore.completed', 'A restore finished'],
  ['restore.failed', 'A restore failed'],
];

const MAX_WEBHOOKS = 10;

export function WebhooksPage() {
  const hooks = useResource(
    (signal) => api.listWebhooks(signal),
    [],
    () => 15_000,
  );
  const [created, setCreated] = useState<{ webhook: Webhook; secret: string } | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const toast = useToast();

  const remove = async (w: Webhook) => {
    if (!window.confirm(`Delete the webhook to ${w.url}? Its delivery log goes with it.`)) return;
    try {
      await api.deleteWebhook(w.id);
      if (created?.webhook.id === w.id) setCreated(null);
      toast('Webhook deleted', 'success');
      hooks.reload();
    } catch (err) {
      toast(errorMessage(err), 'error');
    }
  };

  const list = hooks.data;
  return (
    <main className="page">
      <div className="page-head">
        <div>
          <h1>Webhooks</h1>
          <p className="muted">Kova posts to these URLs when a snapshot fails or is overdue, and when a restore ends.</p>
        </div>
      </div>
      <div className="stack-lg">
        {created && (
          <Callout
            tone="success"
            role="status"
            title="Webhook added. Copy its signing secret now: it is not shown again."
            action={
              <button type="button" className="btn btn-ghost btn-sm" onClick={() => setCreated(null)}>
                Done
              </button>
            }
          >
            <p>
              Each request carries <code>X-Kova-Signature: sha256=…</code>, the HMAC-SHA256 of its body keyed with this secret.
            </p>
            <p className="secret-row">
              <code data-testid="webhook-secret">{created.secret}</code>
              <CopyButton value={created.secret} label="Copy the secret" />
            </p>
          </Callout>
        )}
        {list === undefined ? (
          hooks.error ? (
            <ErrorState error={hooks.error} onRetry={hooks.reload} title="Could not load your webhooks" />
          ) : (
            <LoadingCard rows={2} label="Loading webhooks" />
          )
        ) : list.length === 0 ? (
          <div className="card">
            <EmptyState icon="bell" title="No webhooks yet">
              Add a URL below to hear about failed or missed snapshots and finished restores as they happen.
            </EmptyState>
          </div>
        ) : (
          <div className="webhook-list" aria-label="Your webhooks">
            {list.map((w) => (
              <WebhookCard
                key={w.id}
                webhook={w}
                open={open === w.id}
                onToggle={() => setOpen((o) => (o === w.id ? null : w.id))}
                onDelete={() => void remove(w)}
              />
            ))}
          </div>
        )}
        {list !== undefined && list.length < MAX_WEBHOOKS ? (
          <AddWebhook
            onAdded={(r) => {
              setCreated(r);
              hooks.reload();
            }}
          />
        ) : list !== undefined ? (
          <p className="muted small">You have {MAX_WEBHOOKS} webhooks, the most allowed. Delete one to add another.</p>
        ) : null}
      </div>
    </main>
  );
}

function WebhookCard({
  webhook: w,
  open,
  onToggle,
  onDelete,
}: {
  webhook: Webhook;
  open: boolean;
  onToggle: () => void;
  onDelete: () => void;
}) {
  const last = w.lastDelivery;
  return (
    <section className="card webhook" data-testid="webhook" aria-label={`Webhook to ${w.url}`}>
      <div className="webhook-head">
        <div className="webhook-main">
          <code className="webhook-url">{w.url}</code>
          <div className="chips">
            {w.events.map((e) => (
              <span className="chip" key={e}>
                {e}
              </span>
            ))}
          </div>
          <p className="muted small">
            Added <RelativeTime iso={w.createdAt} /> ·{' '}
            {last ? (
              <>
                last delivery <StatusBadge status={last.status} /> <RelativeTime iso={last.createdAt} />
              </>
            ) : (
              'nothing sent yet'
            )}
          </p>
        </div>
        <div className="row-actions">
          <button type="button" className="btn btn-secondary btn-sm" onClick={onToggle} aria-expanded={open}>
            {open ? 'Hide deliveries' : 'Deliveries'}
          </button>
          <button type="button" className="btn btn-danger-outline btn-sm" onClick={onDelete} aria-label={`Delete the webhook to ${w.url}`}>
            <Icon name="trash" size={14} /> Delete
          </button>
        </div>
      </div>
      {open && <DeliveryLog id={w.id} />}
    </section>
  );
}

function DeliveryLog({ id }: { id: string }) {
  const log = useResource(
    (signal) => api.webhookDeliveries(id, signal),
    [id],
    (d) => (d?.deliveries.some((x) => x.status === 'pending') ? 5000 : 15_000),
  );
  if (!log.data) {
    return log.error ? (
      <ErrorState error={log.error} onRetry={log.reload} title="Could not load the deliveries" />
    ) : (
      <LoadingCard rows={2} label="Loading deliveries" />
    );
  }
  const rows = log.data.deliveries;
  if (rows.length === 0)
    return <p className="muted small webhook-empty">No deliveries yet: nothing has happened that this webhook asked for.</p>;
  return (
    <div className="table-wrap">
      <table className="table table-cards" aria-label="Deliveries">
        <thead>
          <tr>
            <th scope="col">Event</th>
            <th scope="col">Status</th>
            <th scope="col">Attempts</th>
            <th scope="col">Result</th>
            <th scope="col">When</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((d) => (
            <tr key={d.id} data-testid="delivery">
              <td data-label="Event">
                <code>{d.event}</code>
              </td>
              <td data-label="Status">
                <StatusBadge status={d.status} />
              </td>
              <td data-label="Attempts" className="cell-num">
                {d.attempts}
              </td>
              <td data-label="Result" className={d.status === 'delivered' ? undefined : 'cell-error'}>
                {d.status === 'delivered'
                  ? `HTTP ${d.responseStatus ?? ''}`
                  : (d.error ?? (d.responseStatus !== null ? `HTTP ${d.responseStatus}` : '—'))}
                {d.status === 'pending' && d.nextAttemptAt && (
                  <span className="muted small">
                    {' '}
                    · next try <RelativeTime iso={d.nextAttemptAt} />
                  </span>
                )}
              </td>
              <td data-label="When" className="cell-nowrap">
                <RelativeTime iso={d.createdAt} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function AddWebhook({ onAdded }: { onAdded: (r: { webhook: Webhook; secret: string }) => void }) {
  const id = useId();
  const [url, setUrl] = useState('');
  const [events, setEvents] = useState<string[]>(['snapshot.failed', 'snapshot.missed', 'restore.failed']);
  const [error, setError] = useState<{ field: 'url' | 'events' | 'form'; message: string } | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async () => {
    if (!/^https?:\/\/\S+$/i.test(url.trim())) return setError({ field: 'url', message: 'Enter a URL starting with https:// or http://.' });
    if (events.length === 0) return setError({ field: 'events', message: 'Choose at least one event.' });
    setBusy(true);
    setError(null);
    try {
      onAdded(await api.createWebhook(url.trim(), events));
      setUrl('');
    } catch (err) {
      const code = err instanceof ApiError ? err.code : '';
      const field =
        code.startsWith('INVALID_WEBHOOK_URL') || code === 'WEBHOOK_URL_FORBIDDEN'
          ? 'url'
          : code === 'INVALID_WEBHOOK_EVENT'
            ? 'events'
            : 'form';
      setError({ field, message: errorMessage(err) });
    } finally {
      setBusy(false);
    }
  };

  return (
    <form
      className="card webhook-form stack"
      aria-labelledby={`${id}-title`}
      onSubmit={(e) => {
        e.preventDefault();
        void submit();
      }}
    >
      <h2 id={`${id}-title`}>Add a webhook</h2>
      <div className="field">
        <label htmlFor={`${id}-url`}>URL</label>
        <input
          id={`${id}-url`}
          className="input"
          type="url"
          inputMode="url"
          placeholder="https://hooks.example.com/kova"
          value={url}
          onChange={(e) => {
            setUrl(e.target.value);
            setError(null);
          }}
          autoComplete="off"
          aria-invalid={error?.field === 'url' ? true : undefined}
          aria-describedby={error?.field === 'url' ? `${id}-url-error` : undefined}
        />
        <FieldError id={`${id}-url-error`} message={error?.field === 'url' ? error.message : undefined} />
      </div>
      <fieldset className="field event-choices" aria-describedby={error?.field === 'events' ? `${id}-events-error` : undefined}>
        <legend className="setting-label">Events</legend>
        {EVENTS.map(([name, label]) => (
          <label className="check" key={name}>
            <input
              type="checkbox"
              checked={events.includes(name)}
              onChange={(e) => {
                setEvents((cur) => (e.target.checked ? [...cur, name] : cur.filter((x) => x !== name)));
                setError(null);
              }}
            />
            <span>
              <span className="check-label">{label}</span>
              <code className="muted small">{name}</code>
            </span>
          </label>
        ))}
        <FieldError id={`${id}-events-error`} message={error?.field === 'events' ? error.message : undefined} />
      </fieldset>
      {error?.field === 'form' && (
        <Callout tone="danger" role="alert">
          {error.message}
        </Callout>
      )}
      <div className="form-actions">
        <button type="submit" className="btn btn-primary" disabled={busy}>
          <Icon name="plus" /> {busy ? 'Adding…' : 'Add webhook'}
        </button>
      </div>
    </form>
  );
}
