/**
 * `npm run bench`: every benchmark, printed as figures side by side with a reference. Select
 * some with `npm run bench -- runner` (names below); `npm run bench -- predict --quick` for a
 * shorter predict run. Benchmarks print; they never assert.
 */
import { benchChipSlice } from './chip-slice.js';
import { benchLabelsXview } from './labels-xview.js';
import { benchRgb } from './rgb.js';
import { benchBatchSubmit } from './batch-submit.js';
import { benchRunnerOverhead } from './runner-overhead.js';

// benchmarks run on Node 20 here, as the CLI does (bin/geobatch.ts): keep the SDK's notice out
// of the figures
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const benches: Record<string, () => Promise<void>> = {
  async 'batch-submit'() {
    for (const r of await benchBatchSubmit()) {
      const aws = r.latencyMs ? `AWS answering in ${r.latencyMs} ms` : 'AWS answering at once';
      console.log(
        `batch runner: submit ${r.images.toLocaleString('en')} images, ${r.stages} stages (${aws}; S3: s3rver)`,
      );
      console.log(`  API calls        ${r.totalCalls}   (target <= ${2 * r.stages} + plan upload)`);
      for (const [name, n] of Object.entries(r.calls)) console.log(`    ${name.padEnd(24)} ${n}`);
      console.log(`  wall time        ${(r.wallMs / 1000).toFixed(2)} s   (target < 5 s)`);
      console.log(`  plan.json        ${(r.planBytes / 1e6).toFixed(2)} MB`);
    }
  },
  async rgb() {
    await benchRgb();
  },
  async 'chip-slice'() {
    await benchChipSlice();
  },
  retile: async () => (await import('./retile.js')).benchRetile(),
  async cog() {
    await (await import('./cog.js')).benchCog();
  },
  predict: async () => (await import('./predict.js')).benchPredict(),
  sync: async () => (await import('./sync.js')).benchSync(),
  similar: async () => (await import('./similar.js')).benchSimilar(),
  tiles: async () => (await import('./tiles.js')).benchTiles(),
  async xview() {
    await benchLabelsXview();
  },
  async runner() {
    const r = await benchRunnerOverhead();
    console.log(`local runner, ${r.tasks} no-op tasks (concurrency = cores)`);
    console.log(`  time from 'geobatch run' to the first task starting   ${r.firstTaskMs.toFixed(0)} ms`);
    console.log(`  whole run                                            ${(r.wallMs / 1000).toFixed(2)} s`);
    console.log(
      `  overhead per task (task span / tasks)                ${r.perTaskMs.toFixed(2)} ms   (target < 20 ms)`,
    );
    console.log(`  reference: one node process per task (xargs -P)     ${r.processPerTaskMs.toFixed(2)} ms`);
  },
};

// flags (--quick) are for the benchmarks themselves, which read process.argv
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const names = wanted.length ? wanted : Object.keys(benches);
for (const name of names) {
  const bench = benches[name];
  if (!bench) {
    console.error(`unknown benchmark '${name}' (known: ${Object.keys(benches).join(', ')})`);
    process.exitCode = 2;
    continue;
  }
  await bench();
}
