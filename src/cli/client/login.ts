/**
 * login: `kova login` checks an API key against a server and saves both for
 * later commands; `kova logout` forgets them (the key itself stays valid).
 */
import type { Command } from 'commander';
import { note, printJson, println } from '../output.js';
import { KovaClient } from './api-client.js';
import type { ClientContext } from './common.js';
import {
  ClientUsageError,
  checkToken,
  configPath,
  normalizeUrl,
  readSavedLogin,
  removeLogin,
  resolveUrl,
  saveLogin,
} from './connection.js';

export function registerLogin(program: Command, ctx: ClientContext): void {
  const { io } = ctx;

  program
    .command('login')
    .description('check an API key against a Kova server and save both for later commands')
    .option('--url <url>', 'the Kova server [KOVA_URL] (default: the saved login, else http://127.0.0.1:8080)')
    .option('--token <token>', 'the API key (kova_<prefix>.<secret>) [KOVA_TOKEN]; asked for on a terminal when not given')
    .option('--json', 'print the user and server as JSON')
    .action(async (o: { url?: string; token?: string; json?: boolean }) => {
      const file = configPath(ctx.env);
      // A broken saved login must not stop the login that replaces it.
      const saved = await readSavedLogin(file).catch(() => null);
      const url = o.url !== undefined ? normalizeUrl(o.url) : resolveUrl({}, ctx.env, saved);
      let token = o.token ?? ctx.env.KOVA_TOKEN;
      if (token === undefined || token.trim() === '') {
        if (!ctx.terminal.interactive) {
          throw new ClientUsageError(
            'NO_TOKEN',
            'no API key given: pass --token or set KOVA_TOKEN (or run "kova login" on a terminal to type it)',
          );
        }
        token = await ctx.terminal.secret(`API key for ${url}: `);
      }
      token = checkToken(token);
      const me = await new KovaClient(url, token).me();
      await saveLogin(file, { url, token });
      if (o.json) return printJson(io, { url, user: me.user, server: me.server, configFile: file });
      println(io, `logged in to ${url} as ${me.user.name}`);
      note(io, `saved in ${file}`);
    });

  program
    .command('logout')
    .description('forget the saved login (the API key stays valid; revoke it with "kova keys revoke")')
    .option('--json', 'print the result as JSON')
    .action(async (o: { json?: boolean }) => {
      const file = configPath(ctx.env);
      const removed = await removeLogin(file);
      if (o.json) return printJson(io, { loggedOut: removed, configFile: file });
      println(io, removed ? `logged out (removed ${file})` : 'not logged in');
    });
}
