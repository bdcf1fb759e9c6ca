/**
 * sdl/suggest: which allowed field name a typo most likely meant, for the
 * "unknown field (did you mean ...?)" messages.
 */

/** The allowed key a typo most likely meant: same letters ignoring case, or at most two edits away. */
export function suggest(key: string, allowed: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  const exact = allowed.find((a) => a.toLowerCase() === lower);
  if (exact !== undefined) return exact;
  return allowed.find((a) => Math.abs(a.length - key.length) <= 2 && editDistance(a.toLowerCase(), lower) <= 2);
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur.push(Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}
