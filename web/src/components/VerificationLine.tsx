/**
 * VerificationLine: where the checks of a deployment's stored data stand
 * ("Last check: …, every byte read at least once since …") and a button to
 * check the next part now. A failed check says so in red.
 */
import { useState } from 'react';
import { api, errorMessage, type VerificationSummary } from '../api';
import { useToast } from '../toast';
import { Icon } from './Icon';
import { RelativeTime } from './RelativeTime';

const busy = (v: VerificationSummary) => v.lastVerification?.status === 'queued' || v.lastVerification?.status === 'running';

export function VerificationLine({
  deploymentId,
  summary,
  onStarted,
}: {
  deploymentId: string;
  summary: VerificationSummary;
  onStarted: () => void;
}) {
  const toast = useToast();
  const [starting, setStarting] = useState(false);
  const last = summary.lastVerification;
  const failed = last?.status === 'failed';
  const checkNow = async () => {
    setStarting(true);
    try {
      await api.requestVerification(deploymentId);
      toast('Check started.', 'success');
      onStarted();
    } catch (err) {
      toast(`Could not start a check: ${errorMessage(err)}`, 'error');
    } finally {
      setStarting(false);
    }
  };
  return (
    <div className={`verification-line${failed ? ' is-failed' : ''}`} data-testid="verification-line" role="status">
      <Icon name={failed ? 'alert' : 'check'} size={16} />
      <p>
        {last === null ? (
          <>Last check: none yet</>
        ) : busy(summary) ? (
          <>Last check: {last.status === 'running' ? 'running now' : 'queued'}</>
        ) : failed ? (
          <>
            Last check <RelativeTime iso={last.finishedAt ?? last.createdAt} />: found{' '}
            {last.error ? 'it could not run' : `${last.findings} problem${last.findings === 1 ? '' : 's'}`}
            {last.damagedSnapshots.length > 0 &&
              ` (${last.damagedSnapshots.length} snapshot${last.damagedSnapshots.length === 1 ? '' : 's'} marked damaged)`}
          </>
        ) : (
          <>
            Last check <RelativeTime iso={last.finishedAt ?? last.createdAt} />: ok
          </>
        )}
        {summary.lastFullCheckAt ? (
          <>
            , every byte read at least once since{' '}
            <time dateTime={summary.lastFullCheckAt}>
              {new Date(summary.lastFullCheckAt).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' })}
            </time>
          </>
        ) : (
          <>, not every byte read back yet</>
        )}
        <span className="muted"> · {summary.enabled ? `a part every ${summary.interval}, all in 30 days` : 'scheduled checks off'}</span>
      </p>
      <button type="button" className="btn btn-secondary btn-sm" onClick={checkNow} disabled={starting || busy(summary)}>
        Check now
      </button>
    </div>
  );
}
