/**
 * main: the `kova` command line. Each command group lives in its own file;
 * this one wires them and turns errors into one line on stderr and a
 * non-zero exit code.
 */
import { Command, CommanderError } from 'commander';
import { KovaError } from '../core/errors.js';
import { printable } from '../core/text.js';
import { type Io, processIo } from './output.js';

const VERSION = '0.1.0';

/**
 * buildProgram wires the command groups. `kova repo …` (run from scripts
 * and timers, often) loads only its own group: the modules of the others
 * took about 25 ms of each of its starts.
 */
async function buildProgram(io: Io, argv: readonly string[]): Promise<Command> {
  const program = new Command('kova')
    .description('Kova volume snapshots: serve the API and dashboard, manage deployments and snapshots, operate repositories')
    .version(VERSION)
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out.write(s),
      writeErr: (s) => io.err.write(s),
    });
  if (argv[0] === 'repo') {
    (await import('./repo.js')).registerRepo(program, io);
    return program;
  }
  const [serve, node, controlPlane, keys, nodes, repo, client] = await Promise.all([
    import('./serve.js'),
    import('./node.js'),
    import('./control-plane.js'),
    import('./keys.js'),
    import('./nodes.js'),
    import('./repo.js'),
    import('./client/register.js'),
  ]);
  serve.registerServe(program, io);
  node.registerNode(program, io);
  controlPlane.registerControlPlane(program, io);
  keys.registerKeys(program, io);
  nodes.registerNodes(program, io);
  repo.registerRepo(program, io);
  client.registerClient(program, io);
  return program;
}

/** describeError renders an error as the one line the user sees. */
export function describeError(err: unknown): string {
  if (err instanceof KovaError) return err.message;
  if (err instanceof Error) {
    const e = err as NodeJS.ErrnoException;
    if (e.code && e.path) return `${e.code === 'ENOENT' ? 'no such file or directory' : e.code}: ${e.path}`;
    return err.message;
  }
  return String(err);
}

/** main runs the CLI and resolves to the process exit code. */
export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  const program = await buildProgram(io, argv);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; usage errors were already printed.
      return err.exitCode === 0 ? 0 : 2;
    }
    io.err.write(`kova: ${printable(describeError(err))}\n`);
    return 1;
  }
}
