import { Command } from 'commander';
import { discover } from '../serve/layers.js';
import { startServer, type ServeOptions } from '../serve/server.js';
import { embeddingsLookup } from '../serve/similar.js';
import { integerOption } from './options.js';
import { cliStorage } from './storage.js';

export const serveCommand = new Command('serve')
  .description(
    'Show a run, a scene or an s3:// run prefix on a map in the browser: a local web server with ' +
      'a MapLibre GL page. From a run folder it shows the 8-bit RGB scenes (else the raw scenes), ' +
      'masks and predicted class rasters as tiles, and the chip footprints (coloured by no-data ' +
      'class), geo-labels, predictions (coloured by class, a score slider) and evaluation errors ' +
      'as vectors; clicking a chip shows its scene, window and annotations. Nothing is fetched ' +
      'from the internet (MapLibre comes from the installed package, no basemap). Listens on ' +
      '127.0.0.1 until Ctrl-C.',
  )
  .argument('<target>', 'a run folder (local or s3:// prefix with plan.json) or a raster (.tif, .tiff, .jp2)')
  .option('--host <host>', 'address to listen on (0.0.0.0 to let other machines in)', '127.0.0.1')
  .option('--port <port>', 'port to listen on; 0 picks a free one', integerOption('--port', 0, 65535), 8080)
  .option('--cache-mb <mb>', 'tile cache per raster layer, MiB', integerOption('--cache-mb', 0, 65536), 64)
  .option(
    '--embeddings <dir>',
    "an embeddings folder (embed.json) for 'similar chips' on the page; default: the run's embed stage output",
  )
  .option('--json', 'print {url, layers} as JSON once listening (for scripts)', false)
  .action(
    async (
      target: string,
      opts: { host: string; port: number; cacheMb: number; json: boolean; embeddings?: string },
    ) => {
      const storage = cliStorage();
      const run = await discover(storage, target, {
        cacheBytes: opts.cacheMb * 2 ** 20,
        warn: (m) => process.stderr.write(`warning: ${m}\n`),
      });
      let running;
      try {
        const embeddings = opts.embeddings ?? run.embeddings;
        const options: ServeOptions = {
          host: opts.host,
          port: opts.port,
          ...(embeddings ? { similar: await embeddingsLookup(storage, embeddings) } : {}),
        };
        running = await startServer(storage, run, options);
      } catch (error) {
        await run.close();
        throw error;
      }
      if (opts.json) {
        process.stdout.write(
          JSON.stringify({
            url: running.url,
            layers: run.layers.map((l) => ({ id: l.id, type: l.type, title: l.title })),
          }) + '\n',
        );
      } else {
        process.stdout.write(
          `serving ${target}: ${run.layers.length} layers at ${running.url} (Ctrl-C to stop)\n`,
        );
      }
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          resolve();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      await running.close();
      if (!opts.json) process.stdout.write('stopped\n');
    },
  );
