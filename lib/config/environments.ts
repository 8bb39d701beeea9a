/**
 * The environments geobatch knows (dev and prod by default, more from cdk.json) and how the
 * CDK app picks them: `-c env=NAME` selects one, no `env` selects all.
 */
import { ConfigError, problemsFromZod, type ConfigProblem } from './errors.js';
import {
  environmentConfigSchema,
  environmentNamePattern,
  environmentNameRule,
  type EnvironmentConfig,
  type EnvironmentOverrides,
} from './schema.js';

/** Context keys the CDK app reads (`-c key=value` or `context` in cdk.json). */
export const contextKeys = {
  /** Which environment to synthesise; all when absent. */
  env: 'env',
  /** `{ "<env>": overrides }`: changes to the defaults below, or whole new environments. */
  environments: 'geobatch:environments',
  /** Image tag for the job definitions, overriding the environment's `imageTag` (CI sets it). */
  imageTag: 'imageTag',
  /**
   * `true` when the deploy comes from the CI workflow, which runs as the environment's CI role:
   * synthesis then refuses an environment without `ci.githubRepository`, whose stack would no
   * longer hold that role.
   */
  requireCiRole: 'requireCiRole',
} as const;

/**
 * Defaults of the two built-in environments, on top of the schema's own defaults.
 * dev: nothing billed at idle (public subnets, no NAT), small caps, short log retention.
 * prod: private subnets behind one NAT gateway, larger caps, data kept on delete.
 */
export const environmentDefaults: Readonly<Record<string, EnvironmentOverrides>> = {
  dev: {
    network: { layout: 'public' },
    compute: {
      cpu: { maxvCpus: 64, rootVolumeGiB: 200 },
      gpu: { maxvCpus: 16, rootVolumeGiB: 200 },
    },
    logs: { retentionDays: 14 },
    ecr: { keepImages: 20 },
    retainOnDelete: false,
  },
  prod: {
    network: { layout: 'private', natGateways: 1 },
    compute: {
      cpu: { maxvCpus: 512, onDemandMaxvCpus: 128, rootVolumeGiB: 500 },
      gpu: { maxvCpus: 128, onDemandMaxvCpus: 32, rootVolumeGiB: 500 },
    },
    jobs: { retryAttempts: 3 },
    logs: { retentionDays: 365 },
    ecr: { keepImages: 100 },
    retainOnDelete: true,
  },
};

/** What the CDK app found in its context, unparsed. */
export interface PlatformContext {
  readonly env?: unknown;
  readonly environments?: unknown;
  readonly imageTag?: unknown;
  readonly requireCiRole?: unknown;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Objects merge key by key; arrays and scalars in `override` replace those in `base`. */
export function deepMerge(base: unknown, override: unknown): unknown {
  if (override === undefined) return base;
  if (!isRecord(base) || !isRecord(override)) return override;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override)) out[key] = deepMerge(base[key], value);
  return out;
}

const contextWhere = 'the CDK context';

function parseOverrides(raw: unknown): Record<string, unknown> {
  if (raw === undefined) return {};
  let value = raw;
  if (typeof raw === 'string') {
    try {
      value = JSON.parse(raw);
    } catch {
      throw new ConfigError([
        { where: contextWhere, field: contextKeys.environments, value: raw, rule: 'must be a JSON object' },
      ]);
    }
  }
  if (!isRecord(value)) {
    throw new ConfigError([
      {
        where: contextWhere,
        field: contextKeys.environments,
        value,
        rule: 'must be an object of environment name to settings',
      },
    ]);
  }
  return value;
}

/** Names of every environment: the built-in ones, then those only cdk.json defines. */
export function knownEnvironmentNames(overrides: unknown = undefined): string[] {
  const names = Object.keys(environmentDefaults);
  for (const name of Object.keys(parseOverrides(overrides))) if (!names.includes(name)) names.push(name);
  return names;
}

/**
 * Resolves one environment: schema defaults, then the built-in defaults for `name`, then
 * `overrides` (anything nested, e.g. from cdk.json). Throws a ConfigError naming the
 * environment, field, value and rule of every problem.
 */
export function resolveEnvironment(name: string, overrides: unknown = undefined): EnvironmentConfig {
  const where = `environment '${name}'`;
  if (overrides !== undefined && !isRecord(overrides)) {
    throw new ConfigError([{ where, field: '', value: overrides, rule: 'must be an object of settings' }]);
  }
  const input = { ...(deepMerge(deepMerge({}, environmentDefaults[name]), overrides) as object), name };
  const result = environmentConfigSchema.safeParse(input, { reportInput: true });
  if (!result.success) throw new ConfigError(problemsFromZod(where, result.error.issues, input));
  return result.data;
}

function nameProblem(name: unknown): ConfigProblem | undefined {
  if (typeof name === 'string' && environmentNamePattern.test(name)) return undefined;
  return { where: `environment '${String(name)}'`, field: 'name', value: name, rule: environmentNameRule };
}

/**
 * The environments the app synthesises: the one `-c env=NAME` names, or all known ones.
 * `-c imageTag=TAG` replaces the image tag of the selected environments.
 */
export function selectEnvironments(context: PlatformContext): EnvironmentConfig[] {
  const overrides = parseOverrides(context.environments);
  const known = knownEnvironmentNames(overrides);
  let names = known;
  if (context.env !== undefined) {
    const problem = nameProblem(context.env);
    if (problem) throw new ConfigError([problem]);
    const env = context.env as string;
    if (!known.includes(env)) {
      throw new ConfigError([
        {
          where: contextWhere,
          field: contextKeys.env,
          value: env,
          rule: `is not a known environment; known: ${known.join(', ')} (define others under '${contextKeys.environments}' in cdk.json)`,
        },
      ]);
    }
    names = [env];
  }
  const problems = names.map(nameProblem).filter((p): p is ConfigProblem => p !== undefined);
  if (problems.length > 0) throw new ConfigError(problems);
  const imageTag = context.imageTag;
  const configs = names.map((name) => {
    const own = overrides[name];
    return resolveEnvironment(name, imageTag === undefined ? own : deepMerge(own ?? {}, { imageTag }));
  });
  if (requiresCiRole(context.requireCiRole)) {
    const orphaned = configs.filter((c) => c.ci.githubRepository === undefined);
    if (orphaned.length > 0) {
      throw new ConfigError(
        orphaned.map((c) => ({
          where: `environment '${c.name}'`,
          field: 'ci.githubRepository',
          value: undefined,
          rule:
            `must be set when CI deploys (-c ${contextKeys.requireCiRole}=true): without it the stack drops the role ` +
            `CI runs as. Set it under '${contextKeys.environments}' in cdk.json and commit it, so that CI deploys ` +
            `what a laptop deploys`,
        })),
      );
    }
  }
  return configs;
}

function requiresCiRole(value: unknown): boolean {
  if (value === undefined || value === false || value === 'false') return false;
  if (value === true || value === 'true') return true;
  throw new ConfigError([
    { where: contextWhere, field: contextKeys.requireCiRole, value, rule: 'must be true or false' },
  ]);
}
