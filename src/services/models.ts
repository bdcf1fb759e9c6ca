/**
 * models: the records the services work with (users, API keys, checks of
 * stored data, deployments), for the layers above them. The database modules define and
 * store them; the API takes them from here, so it never depends on the
 * database layer itself.
 */
export type { ApiKey } from '../db/api-keys.js';
export type { Deployment } from '../db/deployments.js';
export type { User } from '../db/users.js';
export type { Verification } from '../db/verifications.js';
