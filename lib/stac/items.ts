/**
 * STAC Items as input items: reading an ItemCollection (or a single Item), choosing each item's
 * asset, resolving its href, and naming items by their STAC ids in the input-id rules. Pure: the
 * file's text and location come in, items go out.
 */
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { InputItem } from '../storage/inputs.js';
import { compareUtf8, isHttpUri, isS3Uri } from '../storage/uri.js';
import { StacError } from './errors.js';

/** One asset of a STAC Item, as far as choosing it goes. */
export interface StacAsset {
  readonly href: string;
  readonly type?: string;
  readonly roles?: readonly string[];
}

/** A STAC Item, as far as making an input item of it goes (everything else is kept but not read). */
export interface StacItem {
  readonly type: 'Feature';
  readonly id: string;
  readonly collection?: string;
  readonly assets: Readonly<Record<string, StacAsset>>;
  readonly [field: string]: unknown;
}

/** A JSON object, as the parser sees it. */
type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function shown(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/**
 * The Items of a STAC JSON text: a FeatureCollection of Items (an ItemCollection, as a STAC API
 * search returns it) or a single Item. Each feature must have `type: "Feature"`, a non-empty
 * string `id` and an `assets` object whose values have an `href`. Throws a {@link StacError}
 * naming `file`, the feature and the field.
 */
export function parseStacItems(text: string, file: string): StacItem[] {
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (error) {
    throw new StacError(`${file}: not valid JSON (${(error as Error).message})`);
  }
  if (!isObject(root)) {
    throw new StacError(
      `${file}: expected a STAC ItemCollection or Item (a JSON object) but got ${shown(root)}`,
    );
  }
  if (root.type === 'Feature') return [checkItem(root, file, 'the item')];
  if (root.type !== 'FeatureCollection') {
    throw new StacError(
      `${file}: type: expected "FeatureCollection" (a STAC ItemCollection) or "Feature" (a STAC Item) but got ${shown(root.type)}`,
    );
  }
  if (!Array.isArray(root.features)) {
    throw new StacError(`${file}: features: expected an array of STAC Items but got ${shown(root.features)}`);
  }
  return root.features.map((feature: unknown, index) => checkItem(feature, file, `features[${index}]`));
}

function checkItem(feature: unknown, file: string, where: string): StacItem {
  if (!isObject(feature))
    throw new StacError(`${file}: ${where}: expected a STAC Item object but got ${shown(feature)}`);
  if (feature.type !== 'Feature') {
    throw new StacError(`${file}: ${where}.type: expected "Feature" but got ${shown(feature.type)}`);
  }
  if (typeof feature.id !== 'string' || feature.id === '') {
    throw new StacError(
      `${file}: ${where}.id: expected a non-empty string (the item id) but got ${shown(feature.id)}`,
    );
  }
  const at = `${where} ('${feature.id}')`;
  if (feature.collection !== undefined && typeof feature.collection !== 'string') {
    throw new StacError(`${file}: ${at}.collection: expected a string but got ${shown(feature.collection)}`);
  }
  if (!isObject(feature.assets)) {
    throw new StacError(
      `${file}: ${at}.assets: expected an object of assets by key but got ${shown(feature.assets)}`,
    );
  }
  for (const [key, asset] of Object.entries(feature.assets)) {
    if (!isObject(asset) || typeof asset.href !== 'string' || asset.href === '') {
      throw new StacError(
        `${file}: ${at}.assets.${key}.href: expected a non-empty string but got ${shown(isObject(asset) ? asset.href : asset)}`,
      );
    }
    if (
      asset.roles !== undefined &&
      !(Array.isArray(asset.roles) && asset.roles.every((r) => typeof r === 'string'))
    ) {
      throw new StacError(
        `${file}: ${at}.assets.${key}.roles: expected an array of strings but got ${shown(asset.roles)}`,
      );
    }
    if (asset.type !== undefined && typeof asset.type !== 'string') {
      throw new StacError(
        `${file}: ${at}.assets.${key}.type: expected a media type string but got ${shown(asset.type)}`,
      );
    }
  }
  return feature as unknown as StacItem;
}

/** True for the GeoTIFF media types, with or without a profile: `image/tiff; application=geotiff[; profile=cloud-optimized]`. */
export function isGeoTiffMediaType(type: string | undefined): boolean {
  if (type === undefined) return false;
  const parts = type
    .toLowerCase()
    .split(';')
    .map((part) => part.replace(/\s+/g, ''));
  return parts[0] === 'image/tiff' && parts.includes('application=geotiff');
}

const RASTER_HREF = /\.(tiff?|jp2)([?#].*)?$/i;

/**
 * The key of the asset an item contributes. With `asset`, that key (an item without it is an
 * error listing the keys it has). Without, the first rule that matches exactly one asset wins:
 * (1) GeoTIFF media type and role `data`, (2) GeoTIFF media type, (3) role `data` and an href
 * ending in .tif/.tiff/.jp2. Several assets matching the first rule that matches any is an error
 * (name one with `asset:`), and so is none matching any rule.
 */
export function chooseAssetKey(item: StacItem, file: string, asset?: string): string {
  const keys = Object.keys(item.assets);
  const listed = keys.length === 0 ? 'it has no assets' : `it has ${keys.join(', ')}`;
  if (asset !== undefined) {
    if (Object.hasOwn(item.assets, asset)) return asset;
    throw new StacError(`${file}: item '${item.id}' has no asset '${asset}' (${listed})`);
  }
  const hasData = (a: StacAsset): boolean => a.roles?.includes('data') ?? false;
  const rules: ReadonlyArray<readonly [string, (a: StacAsset) => boolean]> = [
    ['GeoTIFF data assets', (a) => isGeoTiffMediaType(a.type) && hasData(a)],
    ['GeoTIFF assets', (a) => isGeoTiffMediaType(a.type)],
    ['data assets with a .tif/.tiff/.jp2 href', (a) => hasData(a) && RASTER_HREF.test(a.href)],
  ];
  for (const [what, rule] of rules) {
    const matching = keys.filter((key) => rule(item.assets[key]!));
    if (matching.length === 1) return matching[0]!;
    if (matching.length > 1) {
      throw new StacError(
        `${file}: item '${item.id}' has ${matching.length} ${what} (${matching.join(', ')}): name the one to use with 'asset:'`,
      );
    }
  }
  throw new StacError(
    `${file}: item '${item.id}' has no GeoTIFF or data asset to choose (${listed}): name the one to use with 'asset:'`,
  );
}

/**
 * An asset href as a storage URI: `s3://` and `http(s)://` hrefs as they are, `file://` and
 * absolute paths as local paths, and relative hrefs (URI references: `./`, `../`, percent-escapes)
 * resolved against `base`, the location of the file they were read from (a local path, `s3://`
 * or `http(s)://` URI). Other schemes are an error.
 */
export function resolveAssetHref(href: string, base: string, where: string): string {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(href)?.[1]?.toLowerCase();
  if (scheme === 's3' || scheme === 'http' || scheme === 'https') return href;
  if (scheme === 'file') return fileURLToPath(new URL(href));
  if (scheme !== undefined) {
    throw new StacError(
      `${where}: href '${href}' has scheme '${scheme}': expected an s3://, https:// or http:// URL, or a path relative to the file`,
    );
  }
  if (isS3Uri(base)) {
    const url = new URL(href, base);
    return `s3://${url.host}/${decodeURIComponent(url.pathname.slice(1))}`;
  }
  if (isHttpUri(base)) return new URL(href, base).href;
  if (href.startsWith('/')) return href;
  return fileURLToPath(new URL(href, pathToFileURL(base)));
}

/** Characters an input id may not contain become '_'; a leading '.' too (no hidden files). */
export function safeItemId(id: string): string {
  const safe = id.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\./, '_');
  return safe === '' ? 'item' : safe;
}

export interface StacInputOptions {
  /** The asset key to take from every item; without it the rule of {@link chooseAssetKey} picks one. */
  readonly asset?: string;
}

interface Candidate {
  readonly stacId: string;
  readonly collection: string | undefined;
  readonly uri: string;
}

/**
 * Input items from STAC Items read from `file`: the uri is the chosen asset's resolved href, the
 * id is the STAC id in the input-id rules ([A-Za-z0-9._-], see {@link safeItemId}). The same item
 * twice (same id, collection and href, as overlapping search pages can give) is kept once. The same
 * id in several collections becomes `<id>_<collection>`. Ids that still collide after sanitising
 * (case-insensitively: `A:1` and `a/1`) get `-2`, `-3`... in UTF-8 order of the original ids. Two
 * items with the same id and collection but different hrefs cannot be told apart: an error.
 * Items come sorted by id.
 */
export function stacInputItems(
  items: readonly StacItem[],
  file: string,
  options: StacInputOptions = {},
): InputItem[] {
  const byKey = new Map<string, Candidate>();
  const collectionsOf = new Map<string, Set<string | undefined>>();
  for (const item of items) {
    const key = chooseAssetKey(item, file, options.asset);
    const uri = resolveAssetHref(item.assets[key]!.href, file, `${file}: item '${item.id}' asset '${key}'`);
    const identity = JSON.stringify([item.collection ?? null, item.id]);
    const seen = byKey.get(identity);
    if (seen) {
      if (seen.uri === uri) continue;
      throw new StacError(
        `${file}: two items have the id '${item.id}'${item.collection === undefined ? '' : ` in collection '${item.collection}'`} with different '${key}' hrefs (${seen.uri}, ${uri}): they cannot be told apart; remove one`,
      );
    }
    byKey.set(identity, { stacId: item.id, collection: item.collection, uri });
    const collections = collectionsOf.get(item.id) ?? new Set();
    collections.add(item.collection);
    collectionsOf.set(item.id, collections);
  }
  const named = [...byKey.values()].map((candidate) => {
    const several = (collectionsOf.get(candidate.stacId)?.size ?? 0) > 1;
    const wanted =
      several && candidate.collection !== undefined
        ? `${candidate.stacId}_${candidate.collection}`
        : candidate.stacId;
    return { ...candidate, original: wanted, safe: safeItemId(wanted) };
  });
  named.sort((a, b) => compareUtf8(a.original, b.original) || compareUtf8(a.uri, b.uri));
  const natural = new Set(named.map((n) => n.safe.toLowerCase()));
  const taken = new Set<string>();
  const result = named.map((n) => {
    let id = n.safe;
    if (taken.has(id.toLowerCase())) {
      let suffix = 2;
      while (
        natural.has(`${n.safe}-${suffix}`.toLowerCase()) ||
        taken.has(`${n.safe}-${suffix}`.toLowerCase())
      )
        suffix += 1;
      id = `${n.safe}-${suffix}`;
    }
    taken.add(id.toLowerCase());
    return { id, uri: n.uri };
  });
  return result.sort((a, b) => compareUtf8(a.id, b.id));
}
