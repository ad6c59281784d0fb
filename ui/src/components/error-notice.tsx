import { humanizeMessage } from '../format';

/** A refusal or failure, in words, where the user is looking. */
export function ErrorNotice({ error, title, id }: { error: unknown; title?: string; id?: string }) {
  if (!error) return null;
  const message = humanizeMessage(error instanceof Error ? error.message : String(error));
  return (
    <div className="notice error" role="alert" id={id}>
      {title && <strong>{title} </strong>}
      {message}
    </div>
  );
}
