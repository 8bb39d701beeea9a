/**
 * One predict run in its own process, for bench/predict.ts to measure: `node --import tsx
 * bench/predict-child.ts '<json>'` with `{ model, scene, part? }`; prints one JSON line with the
 * run's figures and the process's own peak resident memory (getrusage maxRSS).
 */
import { predictScene } from '../lib/predict/predict.js';
import { createStorage } from '../lib/storage/index.js';

interface ChildConfig {
  readonly model: string;
  readonly scene: string;
  readonly part?: { readonly index: number; readonly count: number };
}

const config = JSON.parse(process.argv[2] ?? '{}') as ChildConfig;
const result = await predictScene(createStorage(), config.scene, {
  model: config.model,
  ...(config.part ? { part: config.part } : {}),
});
console.log(
  JSON.stringify({
    width: result.width,
    height: result.height,
    windows: result.windows,
    rows: result.rows,
    computed: result.computed,
    runs: result.runs,
    seconds: result.seconds,
    windowsPerSecond: result.windowsPerSecond,
    counts: result.counts,
    device: result.device,
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
  }),
);
