/**
 * repos: opening a deployment's snapshot repository, creating it on first use.
 */
import { isErrno } from '../core/errors.js';
import { Repository } from '../engine/index.js';
import { RepoNotFoundError } from '../core/errors.js';
import type { Paths } from './paths.js';

/** Long operations wait for each other's repository locks rather than fail. */
const LOCK_WAIT_MS = 30 * 60_000;

export async function openRepo(paths: Paths, deploymentId: string, create: boolean): Promise<Repository> {
  const dir = paths.repo(deploymentId);
  try {
    return await Repository.open(dir, { lockTimeoutMs: LOCK_WAIT_MS });
  } catch (err) {
    if (!(err instanceof RepoNotFoundError) || !create) throw err;
  }
  try {
    await (await Repository.init(dir)).close();
  } catch (err) {
    // Another job created it meanwhile.
    if (!isErrno(err) && !(err instanceof Error && /not empty/.test(err.message))) throw err;
  }
  return Repository.open(dir, { lockTimeoutMs: LOCK_WAIT_MS });
}
