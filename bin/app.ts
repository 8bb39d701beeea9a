#!/usr/bin/env node
// The CDK app: `npx cdk synth -c env=dev`. Configuration lives in lib/config, stacks in lib/infra.
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { addPlatformStacks } from '../lib/infra/index.js';

const app = new App();
addPlatformStacks(app);
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
