/** A refusal or failure, in words, where the user is looking. */
export function ErrorNotice({ error, title }: { error: unknown; title?: string }) {
  if (!error) return null;
  const message = error instanceof Error ? error.message : String(error);
  return (
    <div className="notice error" role="alert">
      {title && <strong>{title} </strong>}
      {message}
    </div>
  );
}
