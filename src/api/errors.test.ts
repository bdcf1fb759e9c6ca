/**
 * The API's error mapping for a state database that cannot write (disk
 * full, I/O error): 503 STORAGE_UNAVAILABLE with a plain message, and the
 * space errors (507) answered with their message rather than masked.
 */
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { DiskFullError, InsufficientSpaceError } from '../core/errors.js';
import { handleError } from './errors.js';

async function answer(err: Error): Promise<{ status: number; body: { error: { code: string; message: string } } }> {
  const app = Fastify({ logger: false });
  app.setErrorHandler(handleError);
  app.get('/x', async () => {
    throw err;
  });
  const res = await app.inject({ method: 'GET', url: '/x' });
  await app.close();
  return { status: res.statusCode, body: res.json() };
}

describe('handleError', () => {
  for (const code of ['SQLITE_FULL', 'SQLITE_IOERR', 'SQLITE_IOERR_WRITE']) {
    it(`answers ${code} from SQLite with 503 STORAGE_UNAVAILABLE`, async () => {
      const r = await answer(Object.assign(new Error('database or disk is full'), { code }));
      expect(r.status).toBe(503);
      expect(r.body.error.code).toBe('STORAGE_UNAVAILABLE');
      expect(r.body.error.message).toMatch(/retry later/);
    });
  }

  it('answers other SQLite errors with a bare 500', async () => {
    const r = await answer(Object.assign(new Error('constraint failed'), { code: 'SQLITE_CONSTRAINT' }));
    expect(r.status).toBe(500);
    expect(r.body.error.code).toBe('INTERNAL_ERROR');
  });

  it('answers INSUFFICIENT_SPACE and DISK_FULL with 507 and their message, without the path', async () => {
    const r = await answer(new InsufficientSpaceError('restore', '/srv/kova/volumes/dep-1', 2000, 1000));
    expect(r.status).toBe(507);
    expect(r.body.error).toEqual({
      code: 'INSUFFICIENT_SPACE',
      message: 'not enough free space for the restore: it needs 2000 bytes, the disk has 1000 bytes free',
    });
    const d = await answer(new DiskFullError('repository', '/srv/kova/repos/dep-1', 12));
    expect(d.status).toBe(507);
    expect(d.body.error).toEqual({ code: 'DISK_FULL', message: 'the disk holding the repository is full: 12 bytes free' });
  });
});
