export function StatusPill({ blocked }: { blocked: boolean }) {
  return <span className={blocked ? 'pill blocked' : 'pill active'}>{blocked ? 'Blocked' : 'Active'}</span>;
}
