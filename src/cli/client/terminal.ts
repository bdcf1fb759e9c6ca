/**
 * terminal: questions to the person at the keyboard (y/N confirmations, a
 * token typed without echo). Only when stdin is a terminal; commands that
 * need an answer refuse instead when it is not (scripts pass --yes).
 */
import readline from 'node:readline';
import { Writable } from 'node:stream';
import tty from 'node:tty';
import { KovaError } from '../../core/errors.js';
import type { Io } from '../output.js';

export interface Terminal {
  /** Whether questions can be asked (stdin is a terminal). */
  readonly interactive: boolean;
  /** confirm asks a yes/no question; only "y" or "yes" is yes. */
  confirm(question: string): Promise<boolean>;
  /** secret reads a line without echoing it. */
  secret(question: string): Promise<string>;
}

type Input = NodeJS.ReadableStream & { isTTY?: boolean };

/** processTerminal asks on stdin (touched only when a command needs it) and writes to stderr. */
export function processTerminal(io: Io, given?: Input): Terminal {
  const stdin = (): Input => given ?? process.stdin;
  const ask = (question: string, hidden: boolean): Promise<string | null> => {
    const input = stdin();
    let muted = false;
    // Echo goes to stderr (stdout stays for results); muted while typing a secret.
    const output = new Writable({
      write(chunk: Buffer | string, _enc, cb) {
        if (!muted) io.err.write(chunk);
        cb();
      },
    });
    const rl = readline.createInterface({ input, output, terminal: true });
    return new Promise<string | null>((resolve, reject) => {
      let settled = false;
      rl.on('SIGINT', () => {
        settled = true;
        rl.close();
        io.err.write('\n');
        reject(new KovaError('CANCELLED', 'cancelled', { status: 400 }));
      });
      rl.on('close', () => {
        if (settled) return;
        settled = true;
        io.err.write('\n');
        resolve(null); // end of input (Ctrl-D)
      });
      rl.question(question, (answer) => {
        settled = true;
        rl.close();
        if (hidden) io.err.write('\n');
        resolve(answer);
      });
      muted = hidden;
    });
  };

  return {
    get interactive() {
      return given ? !!given.isTTY : tty.isatty(0);
    },
    async confirm(question) {
      const a = await ask(question, false);
      return a !== null && /^\s*y(es)?\s*$/i.test(a);
    },
    async secret(question) {
      return (await ask(question, true)) ?? '';
    },
  };
}
