/**
 * common: what every client command shares: the --url/--token/--json
 * options, the client for them, and the confirmation of destructive actions.
 */
import type { Command } from 'commander';
import { type Io, note } from '../output.js';
import type { KovaClient } from './api-client.js';
import { ClientUsageError, type ConnectionFlags, connect } from './connection.js';
import type { Terminal } from './terminal.js';

export interface ClientContext {
  readonly io: Io;
  readonly terminal: Terminal;
  readonly env: Readonly<Record<string, string | undefined>>;
}

export interface CommonOpts extends ConnectionFlags {
  readonly json?: boolean;
}

/** addConnectionOptions adds --url and --token to a command. */
export function addConnectionOptions(cmd: Command): Command {
  return cmd
    .option('--url <url>', 'the Kova server [KOVA_URL] (default: the saved login, else http://127.0.0.1:8080)')
    .option('--token <token>', 'API key to use [KOVA_TOKEN] (default: the saved login)');
}

/** clientCommand adds a subcommand with the options every client command has. */
export function clientCommand(parent: Command, name: string, description: string): Command {
  return addConnectionOptions(parent.command(name).description(description)).option('--json', "print the API's JSON instead of text");
}

export function client(ctx: ClientContext, o: ConnectionFlags): Promise<KovaClient> {
  return connect(o, ctx.env);
}

/**
 * confirm asks before a destructive action unless --yes was given; without
 * a terminal to ask on, it refuses (one line, non-zero exit).
 */
export async function confirm(
  ctx: ClientContext,
  o: { yes?: boolean },
  opts: { action: string; question: string; warning: readonly string[] },
): Promise<void> {
  if (o.yes) return;
  if (!ctx.terminal.interactive) {
    throw new ClientUsageError(
      'CONFIRMATION_REQUIRED',
      `refusing to ${opts.action} without confirmation: stdin is not a terminal; pass --yes to confirm`,
    );
  }
  for (const line of opts.warning) note(ctx.io, line);
  if (!(await ctx.terminal.confirm(`${opts.question} [y/N] `))) {
    throw new ClientUsageError('CANCELLED', `cancelled: did not ${opts.action}`);
  }
}
