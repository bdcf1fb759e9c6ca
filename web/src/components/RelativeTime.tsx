/** RelativeTime: "3 min ago", with the exact time on hover (title) and in datetime. */
import { formatExact, formatRelative } from '../format';
import { useNow } from '../hooks/useNow';

/**
 * `past`: the time cannot be in the future (a heartbeat, say): one newer than
 * this component's clock, which ticks every 10 s, reads "just now", not "in a few seconds".
 */
export function RelativeTime({ iso, className, past = false }: { iso: string; className?: string; past?: boolean }) {
  const now = useNow(10_000);
  const t = Date.parse(iso);
  return (
    <time className={className} dateTime={iso} title={formatExact(iso)}>
      {formatRelative(iso, past && t > now ? t : now)}
    </time>
  );
}
