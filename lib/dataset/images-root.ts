/**
 * Where the dataset's `file_name`s are relative to: the deepest folder that holds every scene's
 * chip folder (a pipeline's chip stage folder, `<run>/<stage>`), so chips are referenced in place
 * and a file name reads `<scene>/images/<chip>`. Pure.
 */
import { dirnameUri, parseUri } from '../storage/uri.js';
import { DatasetError } from './errors.js';

function splitLocation(uri: string): { root: string; segments: string[] } {
  const location = parseUri(uri);
  if (location.kind === 'local') return { root: '/', segments: location.path.split('/').filter(Boolean) };
  return { root: `s3://${location.bucket}/`, segments: location.key.split('/').filter(Boolean) };
}

/** The common parent of `folders` and, per folder, its path relative to that parent. */
export function commonImagesRoot(folders: readonly string[]): {
  root: string;
  relative: Map<string, string>;
} {
  if (folders.length === 0) throw new DatasetError('no scene folders');
  const parts = folders.map((f) => ({ folder: f, ...splitLocation(f) }));
  const base = parts[0]!.root;
  const other = parts.find((p) => p.root !== base);
  if (other) {
    throw new DatasetError(
      `scene folders ${parts[0]!.folder} and ${other.folder} share no parent folder (different buckets or local and S3): reference needs one images root; use --copy-images to make a self-contained dataset`,
    );
  }
  let common = splitLocation(dirnameUri(parts[0]!.folder)).segments;
  for (const p of parts) {
    const parent = p.segments.slice(0, -1);
    let n = 0;
    while (n < common.length && n < parent.length && common[n] === parent[n]) n++;
    common = common.slice(0, n);
  }
  const root = (base + common.join('/')).replace(/\/$/, '') || '/';
  const relative = new Map(parts.map((p) => [p.folder, p.segments.slice(common.length).join('/')]));
  return { root, relative };
}
