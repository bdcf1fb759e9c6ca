/** format: text from the server is shown escaped, never as raw control sequences; a deployment's node is shown when it has one. */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { Io } from '../output.js';
import type { Deployment, Snapshot, SnapshotSettings } from './api-client.js';
import { deploymentTable, printDeployment, printSettings, printSnapshot, storedWhere } from './format.js';

function capture(): { io: Io; text: () => string } {
  const out = new PassThrough();
  let text = '';
  out.on('data', (b: Buffer) => (text += b.toString()));
  return { io: { out, err: new PassThrough() } as Io, text: () => text };
}

const NOW = Date.parse('2026-02-10T10:00:00.000Z');
const dep = (id: string, node: Deployment['node']): Deployment =>
  ({
    id,
    name: id,
    status: 'active',
    createdAt: '2026-02-10T09:00:00.000Z',
    updatedAt: '2026-02-10T09:00:00.000Z',
    closedAt: null,
    clonedFrom: null,
    operation: null,
    services: [],
    snapshots: null,
    node,
  }) as unknown as Deployment;

describe('deployments and their node', () => {
  const online = dep('dep-a', { id: 'node-x', name: 'edge-1', status: 'online', lastHeartbeatAt: '2026-02-10T09:59:58.000Z' });
  const offline = dep('dep-b', { id: 'node-y', name: 'edge-2', status: 'offline', lastHeartbeatAt: '2026-02-10T09:57:00.000Z' });

  it('adds a NODE column to the list when a deployment runs on a node, saying when an offline one was last seen', () => {
    const { headers, rows } = deploymentTable([online, offline], NOW);
    expect(headers).toEqual(['ID', 'NAME', 'STATUS', 'NODE', 'SERVICES', 'SNAPSHOTS', 'CREATED']);
    expect(rows.map((r) => r[3])).toEqual(['edge-1 (online)', 'edge-2 (offline, last seen 3m ago)']);
  });

  it('leaves the column out in the all-in-one, where no deployment has a node', () => {
    const { headers, rows } = deploymentTable([dep('dep-c', null)], NOW);
    expect(headers).not.toContain('NODE');
    expect(rows[0]).toHaveLength(headers.length);
  });

  it('shows the node in get, and nothing when there is none', () => {
    const a = capture();
    printDeployment(a.io, online);
    expect(a.text()).toMatch(/^NODE +edge-1 \(online\)$/m);
    const b = capture();
    printDeployment(b.io, dep('dep-c', null));
    expect(b.text()).not.toContain('NODE');
  });
});

describe('printSnapshot', () => {
  it('escapes control and bidi characters in the label and the error', () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (b: Buffer) => (text += b.toString()));
    const s = {
      id: 'snap-aaaaaaaaaaaa',
      label: '\u001b[2Jx\u202Ey',
      status: 'failed',
      size: '0 B',
      automatic: false,
      createdAt: '2026-02-10T09:15:00.000Z',
      error: 'boom\u009b31m',
    } as Snapshot;
    printSnapshot({ out, err: new PassThrough() } as Io, s);
    expect(text).toContain('LABEL    \\x1b[2Jx\\u{202e}y');
    expect(text).toContain('boom\\x9b31m');
    // eslint-disable-next-line no-control-regex
    expect(text).not.toMatch(/[\u001b\u009b\u202e]/);
  });
});

describe('storedWhere', () => {
  it('says where a ready snapshot is kept and how its off-node copy stands', () => {
    const ready = { status: 'ready' } as const;
    expect(storedWhere({ ...ready, offsite: null })).toBe('local');
    expect(storedWhere({ ...ready, offsite: { status: 'copied', copiedAt: '2026-02-10T09:15:00.000Z', error: null } })).toBe(
      'local+offsite',
    );
    expect(storedWhere({ ...ready, offsite: { status: 'failed', copiedAt: null, error: 'HTTP 503' } })).toBe('local (offsite failed)');
    expect(storedWhere({ ...ready, offsite: { status: 'copying', copiedAt: null, error: null } })).toBe('local (offsite copying)');
    expect(storedWhere({ status: 'creating', offsite: null })).toBe('');
  });
});

describe('printSettings', () => {
  const settings = (offsite: SnapshotSettings['offsite']): SnapshotSettings =>
    ({
      enabled: false,
      interval: '24h',
      retention: 7,
      nextRunAt: null,
      minInterval: '1m',
      keepHourly: null,
      keepDaily: null,
      keepWeekly: null,
      keepMonthly: null,
      retentionDescription: 'Keeps the 7 most recent automatic snapshots.',
      offsite,
    }) as unknown as SnapshotSettings;

  it('shows off-node copies only when the server has a target', () => {
    for (const [offsite, line] of [
      [{ enabled: true }, 'OFF-NODE COPIES      on: every ready snapshot is copied'],
      [{ enabled: false }, 'OFF-NODE COPIES      off'],
    ] as const) {
      const c = capture();
      printSettings(c.io, settings(offsite));
      expect(c.text().split('\n')).toContain(line);
    }
    const none = capture();
    printSettings(none.io, settings(null));
    expect(none.text()).not.toContain('OFF-NODE');
  });
});
