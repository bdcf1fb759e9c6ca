/**
 * sdl/load-yaml: from SDL text to plain data, for untrusted input: the text
 * is size-capped before parsing, YAML aliases are limited (no "billion
 * laughs"), merge keys (`<<`) are off and only YAML 1.2 is read. Problems
 * become issues at the document's root path.
 */
import { LineCounter, parseDocument } from 'yaml';
import type { Issues } from './issues.js';

/** Largest SDL accepted, in bytes of UTF-8. */
export const MAX_SDL_BYTES = 256 * 1024;

/**
 * Budget for YAML alias expansion (the yaml package weighs each alias by the
 * aliases nested inside what it points to). Plenty for sharing an env list,
 * far too little for an exponential "billion laughs" document.
 */
const MAX_ALIAS_COUNT = 50;

export function parseYaml(text: string, issues: Issues): unknown {
  if (typeof text !== 'string') {
    issues.add('', 'the SDL must be YAML text');
    return undefined;
  }
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_SDL_BYTES) {
    issues.add('', `the SDL is ${bytes} bytes; at most ${MAX_SDL_BYTES} bytes (256 KiB) are accepted`);
    return undefined;
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter,
    prettyErrors: false,
    merge: false,
    stringKeys: true,
    uniqueKeys: true,
    logLevel: 'error',
  });
  for (const err of doc.errors) {
    const { line, col } = lineCounter.linePos(err.pos[0]);
    const message = err.code === 'MULTIPLE_DOCS' ? 'the SDL must be a single YAML document (found another "---")' : err.message;
    issues.add('', `YAML syntax error at line ${line}, column ${col}: ${message}`);
  }
  if (doc.errors.length > 0) return undefined;
  // A %YAML 1.1 directive would bring back merge keys, yes/no booleans and
  // sexagesimal numbers: only YAML 1.2 (the default) is read.
  const version = doc.directives?.yaml.version ?? '1.2';
  if (version !== '1.2') {
    issues.add('', `only YAML 1.2 is supported (remove the %YAML ${version} directive)`);
    return undefined;
  }
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    // Too many aliases (resource exhaustion) or an alias used before its anchor.
    const reason = err instanceof Error ? err.message : String(err);
    issues.add(
      '',
      /excessive alias count/i.test(reason)
        ? 'YAML aliases expand too much: an SDL may reuse anchors only a few times'
        : `YAML aliases could not be expanded: ${reason}`,
    );
    return undefined;
  }
}
