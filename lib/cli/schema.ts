import { writeFile } from 'node:fs/promises';
import { Command } from 'commander';
import { pipelineJsonSchema } from '../pipeline/index.js';

export const schemaCommand = new Command('schema')
  .description(
    'Print the JSON Schema of pipeline files, so editors complete and check them. With the YAML\n' +
      'language server, put "# yaml-language-server: $schema=./pipeline.schema.json" at the top of a file.',
  )
  .option('-o, --out <file>', 'write the schema to a file instead of stdout')
  .action(async (opts: { out?: string }) => {
    const text = JSON.stringify(pipelineJsonSchema(), null, 2) + '\n';
    if (opts.out) await writeFile(opts.out, text);
    else process.stdout.write(text);
  });
