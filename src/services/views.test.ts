/** views: /healthz says how isolated services are; the settings view never throws on a stored value. */
import { describe, expect, it } from 'vitest';
import { PROCESS_ISOLATION_WARNING, healthView, settingsView } from './views.js';

describe('healthView', () => {
  it('reports container isolation for Docker, and none with a warning for local processes', () => {
    expect(healthView('docker', '1.2.3')).toEqual({ status: 'ok', runtime: 'docker', isolation: 'container', version: '1.2.3' });
    expect(healthView('process', '1.2.3')).toEqual({ status: 'ok', runtime: 'process', isolation: 'none', warning: PROCESS_ISOLATION_WARNING, version: '1.2.3' });
    expect(PROCESS_ISOLATION_WARNING).toMatch(/no isolation/);
  });
});

describe('settingsView', () => {
  const base = { deploymentId: 'dep-aaaaaaaaaaaa', enabled: true, intervalMs: 3_600_000, interval: '1h', retention: 7, updatedAt: 0 };

  it.each([253_402_300_800_000, 8.64e15, 9e18, -1, Number.NaN])('shows a due time no client could read (%d) as null instead of throwing', (nextRunAt) => {
    expect(settingsView({ ...base, nextRunAt }, 3_600_000).nextRunAt).toBeNull();
  });

  it('shows the last readable instant and the epoch as they are', () => {
    expect(settingsView({ ...base, nextRunAt: 253_402_300_799_999 }, 3_600_000).nextRunAt).toBe('9999-12-31T23:59:59.999Z');
    expect(settingsView({ ...base, nextRunAt: 0 }, 3_600_000).nextRunAt).toBe('1970-01-01T00:00:00.000Z');
  });
});
