/**
 * SdlEditor: a monospace editor for SDL (YAML) with line numbers; the line an
 * error is about is marked in the gutter and described for screen readers.
 */
import { type UIEvent, useEffect, useRef } from 'react';

export interface SdlEditorProps {
  id: string;
  value: string;
  onChange?: (value: string) => void;
  readOnly?: boolean;
  errorLine?: number | null;
  describedBy?: string;
  label?: string;
  /** The editor grows with its text from minRows to maxRows lines, then scrolls. */
  minRows?: number;
  maxRows?: number;
}

const LINE_PX = 20;

export function SdlEditor({
  id,
  value,
  onChange,
  readOnly = false,
  errorLine = null,
  describedBy,
  label,
  minRows = 12,
  maxRows = 32,
}: SdlEditorProps) {
  const gutter = useRef<HTMLDivElement>(null);
  const area = useRef<HTMLTextAreaElement>(null);
  const count = Math.max(1, value.split('\n').length);
  const rows = Math.min(Math.max(count + 1, minRows), maxRows);
  const syncGutter = (top: number) => {
    if (gutter.current) gutter.current.style.transform = `translateY(${-top}px)`;
  };
  const onScroll = (e: UIEvent<HTMLTextAreaElement>) => syncGutter(e.currentTarget.scrollTop);

  // Bring the line an error is about into view.
  useEffect(() => {
    const el = area.current;
    if (!el || !errorLine) return;
    const top = (errorLine - 1) * LINE_PX;
    if (top < el.scrollTop || top + LINE_PX > el.scrollTop + el.clientHeight - LINE_PX) {
      el.scrollTop = Math.max(0, top - 3 * LINE_PX);
      syncGutter(el.scrollTop);
    }
  }, [errorLine]);
  return (
    <div className={`sdl-editor${readOnly ? ' is-readonly' : ''}${errorLine ? ' has-error' : ''}`} style={{ ['--rows' as string]: rows }}>
      <div className="sdl-gutter" aria-hidden="true">
        <div ref={gutter}>
          {Array.from({ length: count }, (_, i) => (
            <div key={i} className={i + 1 === errorLine ? 'is-error' : undefined}>
              {i + 1}
            </div>
          ))}
        </div>
      </div>
      <textarea
        ref={area}
        id={id}
        value={value}
        onChange={(e) => onChange?.(e.target.value)}
        onScroll={onScroll}
        readOnly={readOnly}
        aria-label={label}
        aria-describedby={describedBy}
        aria-invalid={errorLine ? true : undefined}
        spellCheck={false}
        autoCapitalize="off"
        autoComplete="off"
        autoCorrect="off"
        wrap="off"
      />
    </div>
  );
}
