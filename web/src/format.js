// How times, durations, statuses and rates are shown.

const pad = (n) => String(n).padStart(2, '0');

/** `2026-11-03 14:05:09` in the browser's time zone. */
export function dateTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A time in a named IANA zone: `Mon 2026-11-03 09:30 (Europe/Paris)`. */
export function zonedTime(iso, timeZone) {
  const d = new Date(iso);
  try {
    const parts = Object.fromEntries(
      new Intl.DateTimeFormat('en-GB', {
        timeZone,
        weekday: 'short',
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        minute: '2-digit',
        second: '2-digit',
        hourCycle: 'h23',
      })
        .formatToParts(d)
        .map((p) => [p.type, p.value]),
    );
    const seconds = parts.second === '00' ? '' : `:${parts.second}`;
    return `${parts.weekday} ${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}${seconds}`;
  } catch {
    return dateTime(iso);
  }
}

/** `just now`, `5 min ago`, `in 3 h`. */
export function relative(iso, now = Date.now()) {
  if (!iso) return '';
  const diff = new Date(iso).getTime() - now;
  const abs = Math.abs(diff);
  const future = diff > 0;
  let text;
  if (abs < 10_000) return future ? 'in a few seconds' : 'just now';
  if (abs < 60_000) text = `${Math.round(abs / 1000)} s`;
  else if (abs < 3_600_000) text = `${Math.round(abs / 60_000)} min`;
  else if (abs < 86_400_000) text = `${Math.round(abs / 3_600_000)} h`;
  else text = `${Math.round(abs / 86_400_000)} d`;
  return future ? `in ${text}` : `${text} ago`;
}

/** `85 ms`, `1.25 s`, `2 min 5 s`. */
export function duration(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.round((ms % 60_000) / 1000);
  return `${minutes} min ${seconds} s`;
}

export function percent(rate) {
  if (rate === null || rate === undefined) return '—';
  if (rate === 0) return '0 %';
  if (rate < 0.01) return '< 1 %';
  return `${Math.round(rate * 100)} %`;
}

/** The first characters of an id (UUIDv7s differ at the end first, so keep the tail). */
export function shortId(id) {
  return id ? `…${id.slice(-8)}` : '';
}

export const STATUSES = ['running', 'success', 'error', 'timeout', 'killed', 'skipped', 'interrupted'];
