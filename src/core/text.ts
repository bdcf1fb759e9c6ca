/**
 * text: the one rule for short free text people give Kova (snapshot and
 * API-key labels, deployment names), and how the CLI prints text it did not
 * write itself.
 *
 * Accepted text is well-formed Unicode on one line that shows what it says:
 * - no lone surrogates (they cannot be stored as UTF-8 and come back as
 *   U+FFFD);
 * - no control characters (C0, DEL, C1: a terminal would act on them);
 * - no line or paragraph separators (U+2028, U+2029);
 * - no format characters (category Cf: bidirectional overrides, embeddings
 *   and isolates U+202A–U+202E and U+2066–U+2069, marks U+200E, U+200F and
 *   U+061C, zero-width spaces, U+FEFF, soft hyphens, tag characters …),
 *   except the zero-width joiner and non-joiner (U+200C, U+200D) that
 *   emoji sequences and several scripts need;
 * - no noncharacters (U+FFFE, U+FFFF, U+FDD0–U+FDEF, …).
 * Text is normalised to NFC (so the same visible text is stored as the same
 * code points), and its length is counted in code points after that.
 */
import { ValidationError } from './errors.js';

/** Characters user text must not contain (see the file comment). */
const FORBIDDEN = /[\p{Cc}\p{Cs}\p{Zl}\p{Zp}\p{Noncharacter_Code_Point}]|(?![\u200c\u200d])\p{Cf}/u;

export interface TextRule {
  /** The field's name in messages: "label", "name". */
  readonly field: string;
  /** The stable error code of the caller: INVALID_LABEL, INVALID_NAME, … */
  readonly code: string;
  /** Longest accepted text, in code points. */
  readonly max: number;
}

/** Snapshot and API-key labels. */
export const LABEL_TEXT: TextRule = { field: 'label', code: 'INVALID_LABEL', max: 64 };

/** Deployment names. */
export const NAME_TEXT: TextRule = { field: 'name', code: 'INVALID_NAME', max: 64 };

/** codePoint renders a code point as U+XXXX. */
function codePoint(c: string): string {
  return `U+${(c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * checkText returns `value` normalised to NFC, or throws a ValidationError
 * with the rule's code when it is not a string, is longer than `max` code
 * points, or holds a character the file comment forbids (the message names
 * it by code point and position, never by echoing it). Whitespace is kept:
 * trimming and empty text are the caller's decision.
 */
export function checkText(value: unknown, rule: TextRule): string {
  if (typeof value !== 'string') throw new ValidationError(rule.code, `${rule.field} must be a string`);
  // Checked before normalising: NFC turns lone surrogates into U+FFFD.
  const bad = FORBIDDEN.exec(value);
  if (bad) {
    const at = [...value.slice(0, bad.index)].length + 1;
    throw new ValidationError(
      rule.code,
      `${rule.field} has ${codePoint(bad[0])} at character ${at}; it must be well-formed Unicode without format, bidirectional or control characters`,
    );
  }
  const text = value.normalize('NFC');
  if ([...text].length > rule.max) throw new ValidationError(rule.code, `${rule.field} must be at most ${rule.max} characters`);
  return text;
}

/**
 * printable escapes, for a terminal, every character checkText forbids:
 * `\xHH` below U+0100, `\u{…}` above. Text that passes checkText comes back
 * unchanged. For text from the server or the database, which older versions
 * (or other writers) may have filled with anything.
 */
export function printable(s: string): string {
  let out = '';
  for (const c of s) {
    if (FORBIDDEN.test(c)) {
      const cp = c.codePointAt(0) ?? 0;
      out += cp < 0x100 ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u{${cp.toString(16)}}`;
    } else out += c;
  }
  return out;
}
