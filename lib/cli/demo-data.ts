import { Command } from 'commander';
import { writeDemoData } from '../demo/write-demo-data.js';
import type { DemoDataResult } from '../demo/write-demo-data.js';
import { interruptible } from './errors.js';
import { integerOption } from './options.js';

function summaryText(result: DemoDataResult, seconds: number): string {
  const lines = [`wrote demo data to ${result.dir} in ${seconds.toFixed(1)} s`];
  for (const s of result.scenes) {
    const mb = (s.bytes / 1e6).toFixed(1);
    lines.push(
      `  ${s.image}  ${s.width} x ${s.height} px, 4 x uint16, EPSG:${s.epsg}, ${mb} MB (near ${s.place.name})`,
      `    ${s.counts.building} buildings, ${s.counts.vehicle} vehicles, ${s.counts.storage_tank} storage tanks -> ${s.labels}`,
    );
  }
  lines.push(
    `  ${result.xviewLabels}  (xView-style labels, all scenes)`,
    `  ${result.manifest}`,
    `  ${result.readme}`,
  );
  return lines.join('\n') + '\n';
}

export const demoDataCommand = new Command('demo-data')
  .description(
    [
      'Write the quickstart demo data: synthetic 4-band WorldView-like GeoTIFF',
      'scenes in UTM with buildings, vehicles and storage tanks, their labels',
      '(xView-style GeoJSON and polygons in the image CRS), a demo.json manifest',
      'and a README. The same seed gives the same bytes.',
    ].join('\n'),
  )
  .argument('<dir>', 'output folder (created if missing)')
  .option('--size <px>', 'width and height of each scene in pixels', integerOption('--size', 64, 20000), 3000)
  .option(
    '--scenes <n>',
    'number of scenes (different places and seeds)',
    integerOption('--scenes', 1, 100),
    1,
  )
  .option('--seed <n>', 'seed everything follows from', integerOption('--seed', 0, 2 ** 31 - 1), 42)
  .option('--json', 'print what was written as JSON', false)
  .action(async (dir: string, opts: { size: number; scenes: number; seed: number; json: boolean }) => {
    const started = performance.now();
    const result: DemoDataResult = await interruptible('interrupted; no partial files were left', (signal) =>
      writeDemoData(dir, { size: opts.size, scenes: opts.scenes, seed: opts.seed, signal }),
    );
    const seconds = (performance.now() - started) / 1000;
    if (opts.json)
      process.stdout.write(
        JSON.stringify({ ...result, seconds: Number(seconds.toFixed(3)) }, null, 2) + '\n',
      );
    else process.stdout.write(summaryText(result, seconds));
  });
