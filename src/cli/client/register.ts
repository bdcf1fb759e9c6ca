/**
 * register: the API client commands of `kova` (login, logout, deployments,
 * snapshots, webhooks, verifications), which talk to a running `kova serve` over HTTP.
 */
import type { Command } from 'commander';
import type { Io } from '../output.js';
import type { ClientContext } from './common.js';
import { registerDeployments } from './deployments.js';
import { registerLogin } from './login.js';
import { registerSnapshots } from './snapshots.js';
import { processTerminal } from './terminal.js';
import { registerVerifications } from './verifications.js';
import { registerWebhooks } from './webhooks.js';

export function registerClient(program: Command, io: Io, ctx: Partial<Omit<ClientContext, 'io'>> = {}): void {
  const full: ClientContext = { io, terminal: ctx.terminal ?? processTerminal(io), env: ctx.env ?? process.env };
  registerLogin(program, full);
  registerDeployments(program, full);
  registerSnapshots(program, full);
  registerWebhooks(program, full);
  registerVerifications(program, full);
}
