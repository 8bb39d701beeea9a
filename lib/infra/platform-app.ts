import type { App } from 'aws-cdk-lib';
import type { CatalogEntry } from '../../jobs/catalog.js';
import { contextKeys, selectEnvironments } from '../config/environments.js';
import { PlatformStack, platformStackName } from './platform-stack.js';

/**
 * Adds one PlatformStack per selected environment to `app`, reading the selection from its
 * context: `env` (one environment, or all when absent), `geobatch:environments`, `imageTag` and
 * `requireCiRole` (set by the CI workflow).
 */
export function addPlatformStacks(
  app: App,
  catalog?: Readonly<Record<string, CatalogEntry>>,
): PlatformStack[] {
  const configs = selectEnvironments({
    env: app.node.tryGetContext(contextKeys.env),
    environments: app.node.tryGetContext(contextKeys.environments),
    imageTag: app.node.tryGetContext(contextKeys.imageTag),
    requireCiRole: app.node.tryGetContext(contextKeys.requireCiRole),
  });
  return configs.map(
    (config) =>
      new PlatformStack(app, platformStackName(config.name), { config, ...(catalog ? { catalog } : {}) }),
  );
}
