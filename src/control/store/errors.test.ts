/**
 * Which driver failures the catalogue reports as DATABASE_UNAVAILABLE (503)
 * and which it lets through: PostgreSQL's connection classes and admin
 * shutdown (what a restart produces on open connections), socket errors,
 * pg's own messages for dropped connections, and SQLite busy or failing I/O.
 */
import { describe, expect, it } from 'vitest';
import { KovaError } from '../../core/errors.js';
import { DatabaseUnavailableError, isUnavailable, toCatalogueError } from './errors.js';

const withCode = (code: string, message = 'boom'): Error => Object.assign(new Error(message), { code });

describe('toCatalogueError', () => {
  it.each([
    ['57P01 admin shutdown', withCode('57P01', 'terminating connection due to administrator command')],
    ['57P03 cannot connect now', withCode('57P03', 'the database system is starting up')],
    ['08006 connection failure', withCode('08006')],
    ['08001 unable to connect', withCode('08001')],
    ['ECONNREFUSED', withCode('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432')],
    ['ECONNRESET', withCode('ECONNRESET')],
    ['a dropped connection', new Error('Connection terminated unexpectedly')],
    ['a pool timeout', new Error('timeout exceeded when trying to connect')],
    ['every address refused', new AggregateError([withCode('ECONNREFUSED'), withCode('ECONNREFUSED')])],
    ['SQLite busy', withCode('SQLITE_BUSY')],
  ])('wraps %s as DATABASE_UNAVAILABLE 503, keeping the cause', (_name, err) => {
    const wrapped = toCatalogueError(err);
    expect(wrapped).toBeInstanceOf(DatabaseUnavailableError);
    expect(wrapped).toMatchObject({ code: 'DATABASE_UNAVAILABLE', status: 503, cause: err });
  });

  it.each([
    ['SQLite disk full', withCode('SQLITE_FULL')],
    ['SQLite I/O error', withCode('SQLITE_IOERR_WRITE')],
  ])('wraps %s as STORAGE_UNAVAILABLE 503 (the all-in-one catalogue on a full disk), keeping the cause', (_name, err) => {
    expect(toCatalogueError(err)).toMatchObject({ code: 'STORAGE_UNAVAILABLE', status: 503, cause: err });
  });

  it.each([
    ['a unique violation', withCode('23505', 'duplicate key value')],
    ['a syntax error', withCode('42601')],
    ['a constraint failure', withCode('SQLITE_CONSTRAINT_CHECK')],
    ['a plain bug', new TypeError('x is undefined')],
  ])('lets %s through unchanged', (_name, err) => {
    expect(isUnavailable(err)).toBe(false);
    expect(toCatalogueError(err)).toBe(err);
  });

  it('keeps KovaErrors as they are', () => {
    const err = new KovaError('NODE_EXISTS', 'taken', { status: 409 });
    expect(toCatalogueError(err)).toBe(err);
  });
});
