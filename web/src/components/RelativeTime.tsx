/** RelativeTime: "3 min ago", with the exact time on hover (title) and in datetime. */
import { formatExact, formatRelative } from '../format';
import { useNow } from '../hooks/useNow';

export function RelativeTime({ iso, className }: { iso: string; className?: string }) {
  const now = useNow(10_000);
  return (
    <time className={className} dateTime={iso} title={formatExact(iso)}>
      {formatRelative(iso, now)}
    </time>
  );
}
