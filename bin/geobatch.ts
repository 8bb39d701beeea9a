#!/usr/bin/env node
// Node 20 still runs geobatch (README: Node >= 20.9, 22+ recommended); the SDK's multi-line notice
// about its future Node 22 requirement would otherwise interleave with every command's output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
import { Command } from 'commander';
import { cancelCommand } from '../lib/cli/cancel.js';
import { chipCommand } from '../lib/cli/chip.js';
import { cpCommand, syncCommand } from '../lib/cli/cp.js';
import { datasetCommand } from '../lib/cli/dataset.js';
import { datasetsCommand } from '../lib/cli/datasets.js';
import { demoDataCommand } from '../lib/cli/demo-data.js';
import { embedCommand } from '../lib/cli/embed.js';
import { evalCommand } from '../lib/cli/eval.js';
import { handleError } from '../lib/cli/errors.js';
import { jobsCommand } from '../lib/cli/jobs.js';
import { labelsCommand } from '../lib/cli/labels.js';
import { logsCommand } from '../lib/cli/logs.js';
import { planCommand, validateCommand } from '../lib/cli/plan.js';
import { predictCommand } from '../lib/cli/predict.js';
import { reportCommand } from '../lib/cli/report.js';
import { resumeCommand } from '../lib/cli/resume.js';
import { rgbCommand } from '../lib/cli/rgb.js';
import { runCommand } from '../lib/cli/run.js';
import { schemaCommand } from '../lib/cli/schema.js';
import { serveCommand } from '../lib/cli/serve.js';
import { similarCommand } from '../lib/cli/similar.js';
import { stacCommand } from '../lib/cli/stac.js';
import { statusCommand } from '../lib/cli/status.js';
import { trainCommand } from '../lib/cli/train.js';

const program = new Command('geobatch')
  .description('Geospatial machine learning pipelines, run on this machine or on AWS Batch.')
  .showHelpAfterError()
  .exitOverride();

for (const command of [
  validateCommand,
  planCommand,
  runCommand,
  statusCommand,
  reportCommand,
  logsCommand,
  cancelCommand,
  resumeCommand,
  schemaCommand,
  jobsCommand,
  demoDataCommand,
  stacCommand,
  rgbCommand,
  labelsCommand,
  chipCommand,
  datasetCommand,
  datasetsCommand,
  trainCommand,
  evalCommand,
  predictCommand,
  embedCommand,
  similarCommand,
  cpCommand,
  syncCommand,
  serveCommand,
]) {
  program.addCommand(command.exitOverride());
}

// `geobatch run --json | head` closes the pipe early: stop quietly, like other command-line tools
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

try {
  await program.parseAsync();
} catch (error) {
  handleError(error);
}
