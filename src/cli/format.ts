// Output helpers: aligned tables (Docker-style) and JSON.

export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] + 3))).join('').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

export function ago(iso: string | null): string {
  if (!iso) return '';
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 1) return 'Less than a second ago';
  if (s < 60) return `${Math.floor(s)} second${Math.floor(s) === 1 ? '' : 's'} ago`;
  if (s < 3600) return `${Math.floor(s / 60)} minute${Math.floor(s / 60) === 1 ? '' : 's'} ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} hour${Math.floor(s / 3600) === 1 ? '' : 's'} ago`;
  return `${Math.floor(s / 86400)} days ago`;
}

export function json(v: unknown): string {
  return JSON.stringify(v, null, 4) + '\n';
}

/** Docker prints `ls --format json` as one JSON object per line. */
export function jsonLines(vs: unknown[]): string {
  return vs.map((v) => JSON.stringify(v)).join('\n') + (vs.length ? '\n' : '');
}
