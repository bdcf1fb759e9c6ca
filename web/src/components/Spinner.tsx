/** Spinner: a small indeterminate activity indicator, with a label for screen readers. */
export function Spinner({ label = 'Loading', size = 16 }: { label?: string; size?: number }) {
  return <span className="spinner" style={{ width: size, height: size }} role="status" aria-label={label} />;
}
