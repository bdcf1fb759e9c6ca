/** SdlError: the API's SDL error shown under the editor, with the line it points at. */
import { Callout } from './Callout';

export function SdlError({ id, message, line }: { id: string; message: string; line: number | null }) {
  const text = message.replace(/^invalid SDL: /, '');
  return (
    <div id={id} data-testid="sdl-error">
      <Callout tone="danger" role="alert" title={line ? `The SDL is invalid (line ${line})` : 'The SDL is invalid'}>
        <code className="error-code">{text}</code>
      </Callout>
    </div>
  );
}
