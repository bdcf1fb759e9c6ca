/** format: text from the server is shown escaped, never as raw control sequences. */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { Io } from '../output.js';
import type { Snapshot } from './api-client.js';
import { printSnapshot, storedWhere } from './format.js';

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
