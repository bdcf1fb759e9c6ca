/** FieldError: the message under a form field that was rejected (empty when none). */
import { Icon } from './Icon';

export function FieldError({ id, message }: { id: string; message: string | null | undefined }) {
  if (!message) return null;
  return (
    <p className="field-error" id={id} role="alert">
      <Icon name="alert" size={14} />
      <span>{message}</span>
    </p>
  );
}
