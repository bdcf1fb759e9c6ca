/**
 * output: what the CLI prints. Results go to stdout (plain text or JSON);
 * progress bars and notes go to stderr, bars only when it is a terminal.
 * Text the CLI did not write itself (labels, names, messages from the
 * server) goes through `printable` in tables, so it cannot drive the
 * terminal.
 */
import { printable } from '../core/text.js';
import { formatBytes, formatElapsed } from '../core/units.js';
import type { Progress } from '../engine/index.js';

export interface Io {
  readonly out: NodeJS.WritableStream & { isTTY?: boolean };
  readonly err: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
}

export const processIo: Io = { out: process.stdout, err: process.stderr };

export function println(io: Io, s = ''): void {
  io.out.write(`${s}\n`);
}

export function note(io: Io, s: string): void {
  io.err.write(`${s}\n`);
}

export function printJson(io: Io, v: unknown): void {
  io.out.write(`${JSON.stringify(v, null, 2)}\n`);
}

/** table prints rows under headers, columns padded to their widest cell; cells are made printable. */
export function table(io: Io, headers: readonly string[], cellRows: ReadonlyArray<readonly string[]>): void {
  const rows = cellRows.map((r) => r.map(printable));
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  println(io, line(headers));
  for (const r of rows) println(io, line(r));
}

/**
 * ProgressBar draws one line on a terminal, redrawn in place; on anything
 * else it draws nothing (scripts get the final result only).
 */
export class ProgressBar {
  private readonly started = Date.now();
  private drawn = false;
  private readonly enabled: boolean;

  constructor(
    private readonly io: Io,
    private readonly label: string,
  ) {
    this.enabled = !!io.err.isTTY;
  }

  update = (p: Progress): void => {
    if (!this.enabled) return;
    const width = Math.max(10, Math.min(40, (this.io.err.columns ?? 80) - 60));
    const secs = (Date.now() - this.started) / 1000;
    const rate = secs > 0 ? `${formatBytes(p.bytesDone / secs)}/s` : '';
    let bar = '';
    let pct = '';
    if (p.bytesTotal) {
      const f = Math.min(1, p.bytesDone / p.bytesTotal);
      const full = Math.round(f * width);
      bar = `[${'#'.repeat(full)}${'.'.repeat(width - full)}] `;
      pct = `${(f * 100).toFixed(0).padStart(3)}% `;
    }
    const total = p.bytesTotal ? ` / ${formatBytes(p.bytesTotal)}` : '';
    const files = p.filesTotal ? `${p.filesDone}/${p.filesTotal} files` : p.filesDone > 0 ? `${p.filesDone} files` : '';
    this.io.err.write(
      `\r\x1b[2K${[`${this.label} ${bar}${pct}${formatBytes(p.bytesDone)}${total}`, files, rate].filter(Boolean).join('  ')}`,
    );
    this.drawn = true;
  };

  done(): void {
    if (this.drawn) this.io.err.write(`\r\x1b[2K`);
  }

  get elapsed(): string {
    return formatElapsed(Date.now() - this.started);
  }
}
