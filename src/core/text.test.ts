/** text: the one rule for user text, and printing text the CLI did not write. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KovaError } from './errors.js';
import { LABEL_TEXT, checkText, printable } from './text.js';

const rule = { field: 'label', code: 'INVALID_LABEL', max: 8 };

function refusal(value: unknown): KovaError {
  try {
    checkText(value, rule);
  } catch (err) {
    if (err instanceof KovaError) return err;
    throw err;
  }
  throw new Error(`accepted ${JSON.stringify(value)}`);
}

describe('checkText', () => {
  it.each([
    ['\ud800', 'U+D800 at character 1'],
    ['ab\udfff', 'U+DFFF at character 3'],
    ['😀\u0000', 'U+0000 at character 2'],
    ['\u001b[2J', 'U+001B at character 1'],
    ['\t', 'U+0009'],
    ['a\u0085', 'U+0085'],
    ['a\u009b', 'U+009B'],
    ['\u202E', 'U+202E'],
    ['\u202A', 'U+202A'],
    ['\u2066', 'U+2066'],
    ['\u2069', 'U+2069'],
    ['\u061C', 'U+061C'],
    ['\u200E', 'U+200E'],
    ['\u200B', 'U+200B'],
    ['\u2060', 'U+2060'],
    ['\u00AD', 'U+00AD'],
    ['\uFEFF', 'U+FEFF'],
    ['\u2028', 'U+2028'],
    ['\u2029', 'U+2029'],
    ['\u{E0001}', 'U+E0001'],
    ['\uFDD0', 'U+FDD0'],
    ['\u{10FFFF}', 'U+10FFFF'],
  ])('refuses %j, naming %s', (value, named) => {
    const err = refusal(value);
    expect(err.code).toBe('INVALID_LABEL');
    expect(err.status).toBe(400);
    expect(err.message).toContain(named);
    expect(err.message).not.toContain(value);
  });

  it('refuses what is not a string', () => {
    for (const v of [7, {}, [], true]) expect(refusal(v).message).toBe('label must be a string');
  });

  it('counts code points, after NFC', () => {
    expect(checkText('😀'.repeat(8), rule)).toBe('😀'.repeat(8));
    expect(refusal('😀'.repeat(9)).message).toBe('label must be at most 8 characters');
    // Eight decomposed characters (16 code points) are eight once composed.
    expect(checkText('e\u0301'.repeat(8), rule)).toBe('\u00e9'.repeat(8));
  });

  it('keeps joiners, emoji sequences, private use and whitespace', () => {
    for (const s of ['👨\u200D👩', 'ab\u200Ccd', '\uE000', ' a b ', '\u00A0x']) expect(checkText(s, rule)).toBe(s);
  });

  it("answers with the caller's code", () => {
    expect(() => checkText('\u0000', { ...LABEL_TEXT, code: 'INVALID_NAME' })).toThrow(expect.objectContaining({ code: 'INVALID_NAME' }));
  });

  it('accepts any text that only printable would leave alone, and refuses any it would change', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 8 }), (s) => {
        let accepted = true;
        try {
          checkText(s, { ...rule, max: 1000 });
        } catch {
          accepted = false;
        }
        expect(printable(s) === s).toBe(accepted);
      }),
    );
  });
});

describe('printable', () => {
  it('escapes terminal controls, bidi controls and broken Unicode', () => {
    expect(printable('\u001b[2Jx')).toBe('\\x1b[2Jx');
    expect(printable('a\u0000\u009b\u007f')).toBe('a\\x00\\x9b\\x7f');
    expect(printable('txt\u202Eexe')).toBe('txt\\u{202e}exe');
    expect(printable('\ud800!')).toBe('\\u{d800}!');
    expect(printable('two\nlines')).toBe('two\\x0alines');
  });

  it('leaves ordinary text alone', () => {
    for (const s of ['before-migration', 'Ünïcödé 日本語', '👨\u200D👩\u200D👧', 'C:\\path']) expect(printable(s)).toBe(s);
  });
});
