/**
 * `kova keys`: user text is checked on the way in, and text already in the
 * database (from older versions) is printed escaped, never as raw terminal
 * control sequences.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { Store } from '../db/store.js';
import { KeyService } from '../services/keys.js';
import { systemClock } from '../core/clock.js';
import { main } from './main.js';
import type { Io } from './output.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-keys-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

async function kova(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  const chunks = { out: '', err: '' };
  out.on('data', (b: Buffer) => (chunks.out += b.toString()));
  err.on('data', (b: Buffer) => (chunks.err += b.toString()));
  const code = await main([...args, '--data-dir', dir], { out, err } as Io);
  return { code, ...chunks };
}

// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

describe('kova keys', () => {
  it('refuses a label with a terminal escape or a bidi override, and creates no key', async () => {
    for (const label of ['\u001b[31mred', 'a\u0000b', 'txt\u202Eexe']) {
      const r = await kova('keys', 'create', '--user', 'ops', '--label', label);
      expect(r.code).toBe(1);
      expect(r.out).toBe('');
      expect(r.err).toMatch(/^kova: label has U\+[0-9A-F]{4} at character \d+; .* control characters\n$/);
      expect(r.err).not.toMatch(RAW_CONTROL);
    }
    expect((await kova('keys', 'list')).out).toBe('no keys\n');
  });

  it('prints a label stored with control characters escaped', async () => {
    expect((await kova('keys', 'create', '--user', 'ops', '--label', 'ok')).code).toBe(0);
    const db = new Database(path.join(dir, 'control.db'));
    try {
      // What an older version let through.
      db.prepare('UPDATE api_keys SET label = ?').run('\u001b]0;pwned\u0007\u001b[2J\u202Eevil');
    } finally {
      db.close();
    }
    const r = await kova('keys', 'list');
    expect(r.code).toBe(0);
    expect(r.out).not.toMatch(RAW_CONTROL);
    expect(r.out).toContain('\\x1b]0;pwned\\x07\\x1b[2J\\u{202e}evil');
  });
});

describe('kova keys on a data directory', () => {
  it('writes the catalogue kova serve checks keys against, after taking over the keys of kova.db', async () => {
    const store = Store.open(path.join(dir, 'kova.db'));
    let oldPrefix: string;
    try {
      const keys = new KeyService(store, systemClock);
      const u = keys.ensureUser('admin');
      oldPrefix = (await keys.create(u.id, 'from before')).key.prefix;
    } finally {
      store.close();
    }
    const made = await kova('keys', 'create', '--user', 'ops', '--label', 'new');
    expect(made.code).toBe(0);
    const db = new Database(path.join(dir, 'control.db'), { readonly: true });
    try {
      const rows = db.prepare('SELECT k.prefix, u.name, u.role FROM api_keys k JOIN users u ON u.id = k.user_id ORDER BY u.name').all();
      expect(rows).toEqual([
        { prefix: oldPrefix, name: 'admin', role: 'admin' },
        { prefix: expect.stringMatching(/^[a-z2-7]{12}$/), name: 'ops', role: 'user' },
      ]);
    } finally {
      db.close();
    }
    expect(made.out.trim()).toMatch(/^kova_[a-z2-7]{12}\./);
    const listed = await kova('keys', 'list');
    expect(listed.out).toContain(oldPrefix);
    expect(listed.out).toMatch(/ops/);
    expect((await kova('keys', 'revoke', oldPrefix)).out).toBe(`revoked key ${oldPrefix}\n`);
  });
});
