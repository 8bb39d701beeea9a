/**
 * Lazy loading of job code: the catalog names every job; its module (and the heavy libraries
 * it uses) is imported only when a task of it runs.
 */
import type { JobName, JobParams } from './catalog.js';
import type { JobModule } from './types.js';

type Loaders = { [N in JobName]: () => Promise<JobModule<JobParams<N>>> };

const loaders: Loaders = {
  smoke: async () => (await import('./smoke.js')).smokeJob,
  inspect: async () => (await import('./inspect.js')).inspectJob,
  catalog: async () => (await import('./scene-catalog.js')).sceneCatalogJob,
  rgb: async () => (await import('./rgb.js')).rgbJob,
  labels: async () => (await import('./labels.js')).labelsJob,
  'labels-xview': async () => (await import('./labels-xview.js')).labelsXviewJob,
  'labels-osm': async () => (await import('./labels-osm.js')).labelsOsmJob,
  mask: async () => (await import('./mask.js')).maskJob,
  chip: async () => (await import('./chip.js')).chipJob,
  'chip-grid': async () => (await import('./chip-grid.js')).chipGridJob,
  retile: async () => (await import('./retile.js')).retileJob,
  merge: async () => (await import('./merge.js')).mergeJob,
  train: async () => (await import('./train/job.js')).trainJob,
  eval: async () => (await import('./eval.js')).evalJob,
  predict: async () => (await import('./predict.js')).predictJob,
  'predict-gpu': async () => (await import('./predict.js')).predictJob,
  embed: async () => (await import('./embed.js')).embedJob,
  'embed-gpu': async () => (await import('./embed.js')).embedJob,
};

/** The module of a catalog job. */
export async function loadJob<N extends JobName>(name: N): Promise<JobModule<JobParams<N>>> {
  return (loaders[name] as () => Promise<JobModule<JobParams<N>>>)();
}
