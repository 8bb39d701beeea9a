#!/usr/bin/env node
// Node 20 still runs geobatch (README: Node >= 20.9, 22+ recommended); the SDK's multi-line notice
// about its future Node 22 requirement would otherwise interleave with every command's output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
import { runJobCommand } from '../lib/cli/job.js';

await runJobCommand(process.argv.slice(2));
