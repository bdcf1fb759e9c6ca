/** Skeleton: a grey placeholder block that shimmers while content loads. */
export function Skeleton({ width = '100%', height = 14, className }: { width?: number | string; height?: number; className?: string }) {
  return <span className={className ? `skeleton ${className}` : 'skeleton'} style={{ width, height }} aria-hidden="true" />;
}
