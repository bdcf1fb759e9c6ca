/** Which database a catalogue URL names, and the URLs refused before anything is opened. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openCatalogue, parseTarget } from './index.js';

describe('parseTarget', () => {
  it('reads PostgreSQL and SQLite URLs', () => {
    expect(parseTarget('postgres://kova@db:5432/kova')).toEqual({ dialect: 'postgres', url: 'postgres://kova@db:5432/kova' });
    expect(parseTarget('postgresql://kova@db/kova?sslmode=require').dialect).toBe('postgres');
    expect(parseTarget('sqlite:state/cp.db')).toEqual({ dialect: 'sqlite', file: path.resolve('state/cp.db') });
    expect(parseTarget('/srv/kova/cp.db')).toEqual({ dialect: 'sqlite', file: '/srv/kova/cp.db' });
    expect(parseTarget(':memory:')).toEqual({ dialect: 'sqlite', file: ':memory:' });
  });

  it('refuses other schemes and an empty path with INVALID_INPUT', () => {
    for (const url of ['mysql://db/kova', 'sqlite:', '']) {
      expect(() => parseTarget(url)).toThrow(expect.objectContaining({ code: 'INVALID_INPUT', status: 400 }));
    }
  });

  it('creates a SQLite file readable by its owner only', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-cat-'));
    try {
      const file = path.join(dir, 'sub', 'cp.db');
      const c = await openCatalogue(`sqlite:${file}`);
      await c.close();
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
      expect(fs.statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
