/**
 * Search parameters as a user types them (`--bbox w,s,e,n`, `--datetime 2023-06-01/2023-06-30`),
 * checked and turned into what a STAC API expects. Pure; errors are RangeErrors with the option,
 * the value and what is valid.
 */

/** `w,s,e,n` in degrees: four numbers, latitudes in [-90, 90] with south <= north, longitudes in [-180, 180]. */
export function parseBbox(text: string): [number, number, number, number] {
  const parts = text.split(',').map((part) => part.trim());
  const numbers = parts.map(Number);
  if (parts.length !== 4 || parts.some((p) => p === '') || numbers.some((n) => !Number.isFinite(n))) {
    throw new RangeError(`--bbox: expected west,south,east,north in degrees (4 numbers) but got '${text}'`);
  }
  const [west, south, east, north] = numbers as [number, number, number, number];
  if ([west, east].some((x) => x < -180 || x > 180)) {
    throw new RangeError(`--bbox: longitudes must be in [-180, 180] but got '${text}'`);
  }
  if ([south, north].some((y) => y < -90 || y > 90) || south > north) {
    throw new RangeError(`--bbox: latitudes must be in [-90, 90] with south <= north but got '${text}'`);
  }
  return [west, south, east, north];
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DATETIME = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function instant(text: string, end: boolean, whole: string): string {
  if (text === '..' || text === '') return '..';
  if (DATE.test(text) && !Number.isNaN(Date.parse(`${text}T00:00:00Z`))) {
    // a whole day: from its first second to its last
    return `${text}T${end ? '23:59:59' : '00:00:00'}Z`;
  }
  if (DATETIME.test(text) && !Number.isNaN(Date.parse(text))) return text.replace(' ', 'T');
  throw new RangeError(
    `--datetime: expected an RFC 3339 date-time (2023-06-01T00:00:00Z), a date (2023-06-01), or an interval start/end with '..' for an open end, but got '${whole}'`,
  );
}

/**
 * An RFC 3339 instant or interval as STAC APIs take it. A date alone is the whole day: `2023-06-01`
 * is `2023-06-01T00:00:00Z/2023-06-01T23:59:59Z`, and in an interval a start date is its first
 * second, an end date its last. `..` (or nothing) is an open end; both ends open is an error.
 */
export function parseDatetime(text: string): string {
  const trimmed = text.trim();
  const parts = trimmed.split('/');
  if (parts.length === 1) {
    const only = parts[0]!;
    if (DATE.test(only)) return `${instant(only, false, text)}/${instant(only, true, text)}`;
    const value = instant(only, false, text);
    if (value === '..')
      throw new RangeError(`--datetime: expected a date-time or an interval but got '${text}'`);
    return value;
  }
  if (parts.length !== 2) throw new RangeError(`--datetime: expected start/end but got '${text}'`);
  const start = instant(parts[0]!, false, text);
  const end = instant(parts[1]!, true, text);
  if (start === '..' && end === '..') {
    throw new RangeError(`--datetime: at most one end of the interval may be open, but got '${text}'`);
  }
  if (start !== '..' && end !== '..' && Date.parse(start) > Date.parse(end)) {
    throw new RangeError(`--datetime: the interval ends before it starts: '${text}'`);
  }
  return `${start}/${end}`;
}

/** A comma-separated list of names (collections, ids), none empty. */
export function parseNameList(option: string, text: string): string[] {
  const names = text.split(',').map((name) => name.trim());
  if (names.some((name) => name === '')) {
    throw new RangeError(`${option}: expected comma-separated names but got '${text}'`);
  }
  return names;
}

/** A JSON object given on the command line (`--query '{"eo:cloud_cover":{"lt":10}}'`). */
export function parseJsonObject(option: string, text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new RangeError(`${option}: expected a JSON object but got '${text}' (${(error as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new RangeError(`${option}: expected a JSON object but got '${text}'`);
  }
  return value as Record<string, unknown>;
}
