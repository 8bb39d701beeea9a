/**
 * Lists of task indexes written as ranges (`0-99,105,200-300`): how a resubmitted Batch array
 * maps its array index to the task index of the plan (`geobatch-job ... --indexes <ranges>`).
 */

/** A strictly increasing list of task indexes as ranges: [0,1,2,5,7,8] -> '0-2,5,7-8'. */
export function formatTaskRanges(indexes: readonly number[]): string {
  const parts: string[] = [];
  let i = 0;
  while (i < indexes.length) {
    const start = indexes[i]!;
    let end = start;
    while (i + 1 < indexes.length && indexes[i + 1] === end + 1) end = indexes[++i]!;
    parts.push(start === end ? String(start) : `${start}-${end}`);
    i++;
  }
  return parts.join(',');
}

/** Parses ranges back into a strictly increasing list; throws naming `source` and the bad part. */
export function parseTaskRanges(text: string, source = '--indexes'): number[] {
  const out: number[] = [];
  const trimmed = text.trim();
  if (trimmed === '') throw new Error(`${source}: expected task indexes like '0-99,105' but got nothing`);
  for (const part of trimmed.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    const start = m ? Number(m[1]) : NaN;
    const end = m?.[2] !== undefined ? Number(m[2]) : start;
    const last = out.length ? out[out.length - 1]! : -1;
    if (!m || end < start || start <= last) {
      throw new Error(
        `${source}: expected increasing task indexes or ranges like '0-99,105' but got '${part}' in '${truncate(trimmed)}'`,
      );
    }
    for (let i = start; i <= end; i++) out.push(i);
  }
  return out;
}

/** The indexes 0..count-1. */
export function allTasks(count: number): number[] {
  return Array.from({ length: count }, (_, i) => i);
}

/** Whether `indexes` is exactly 0..count-1 (an array index is then the task index itself). */
export function isAllTasks(indexes: readonly number[], count: number): boolean {
  return indexes.length === count && (count === 0 || indexes[count - 1] === count - 1);
}

function truncate(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
