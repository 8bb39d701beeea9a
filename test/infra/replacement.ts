/**
 * What CloudFormation would do to each resource when a stack is updated from template A to B:
 * which resources it replaces (create the new one, then delete the old), which compute
 * environments get an infrastructure update, and which updates it cannot make. A replacement
 * that keeps a fixed physical name fails: the new resource cannot be created beside the old.
 *
 * The rules come from the CloudFormation resource schemas (createOnlyProperties) and, for
 * compute environments, the AWS Batch user guide ("Updating compute environments",
 * "Perform infrastructure updates") and the CloudFormation ReplaceComputeEnvironment docs.
 */
import type { TemplateJson } from './helpers.js';

interface ResourceRules {
  /** Top-level properties whose change replaces the resource (the schema's createOnlyProperties). */
  readonly createOnly: readonly string[];
  /** The property naming the resource; fixed when the template sets it. */
  readonly nameProperty?: string;
  /** A replacement under the same name does not collide (a new revision of a Batch job definition). */
  readonly replacementReusesName?: boolean;
}

/** Resource types of the geobatch stacks, each with its schema's createOnlyProperties. */
export const resourceRules: Readonly<Record<string, ResourceRules>> = {
  'AWS::Batch::ComputeEnvironment': {
    createOnly: ['ComputeEnvironmentName', 'Tags', 'Type', 'EksConfiguration'],
    nameProperty: 'ComputeEnvironmentName',
  },
  'AWS::Batch::JobQueue': {
    createOnly: ['JobQueueName', 'Tags', 'JobQueueType'],
    nameProperty: 'JobQueueName',
  },
  // RegisterJobDefinition under an existing name adds a revision; the old revision is deregistered
  'AWS::Batch::JobDefinition': {
    createOnly: ['JobDefinitionName', 'Tags'],
    nameProperty: 'JobDefinitionName',
    replacementReusesName: true,
  },
  'AWS::ECR::Repository': {
    createOnly: ['RepositoryName', 'EncryptionConfiguration'],
    nameProperty: 'RepositoryName',
  },
  'AWS::Logs::LogGroup': { createOnly: ['LogGroupName'], nameProperty: 'LogGroupName' },
  'AWS::IAM::Role': { createOnly: ['RoleName', 'Path'], nameProperty: 'RoleName' },
  'AWS::IAM::Policy': { createOnly: [] },
  'AWS::IAM::ManagedPolicy': {
    createOnly: ['ManagedPolicyName', 'Description', 'Path'],
    nameProperty: 'ManagedPolicyName',
  },
  'AWS::IAM::InstanceProfile': {
    createOnly: ['InstanceProfileName', 'Path'],
    nameProperty: 'InstanceProfileName',
  },
  // one provider per URL and account: the URL is as good as a fixed name (its identifier is the ARN)
  'AWS::IAM::OIDCProvider': { createOnly: ['Url'], nameProperty: 'Url' },
  'AWS::S3::Bucket': {
    createOnly: ['BucketName', 'ObjectLockEnabled', 'BucketNamePrefix', 'BucketNamespace'],
    nameProperty: 'BucketName',
  },
  'AWS::S3::BucketPolicy': { createOnly: ['Bucket'] },
  'AWS::SSM::Parameter': { createOnly: ['Name'], nameProperty: 'Name' },
  'AWS::EC2::LaunchTemplate': { createOnly: ['LaunchTemplateName'], nameProperty: 'LaunchTemplateName' },
  'AWS::EC2::PlacementGroup': {
    createOnly: ['Strategy', 'SpreadLevel', 'PartitionCount', 'Tags', 'ParentGroupId'],
  },
  'AWS::EC2::SecurityGroup': {
    createOnly: ['GroupDescription', 'GroupName', 'VpcId'],
    nameProperty: 'GroupName',
  },
  'AWS::EC2::VPC': {
    createOnly: ['CidrBlock', 'Ipv4IpamPoolId', 'Ipv4NetmaskLength', 'VpcEncryptionControl'],
  },
  'AWS::EC2::Subnet': {
    createOnly: [
      'VpcId',
      'AvailabilityZone',
      'AvailabilityZoneId',
      'CidrBlock',
      'OutpostArn',
      'Ipv6Native',
      'Ipv4IpamPoolId',
      'Ipv4NetmaskLength',
      'Ipv6IpamPoolId',
      'Ipv6NetmaskLength',
    ],
  },
  'AWS::EC2::RouteTable': { createOnly: ['VpcId'] },
  'AWS::EC2::Route': {
    createOnly: [
      'RouteTableId',
      'DestinationCidrBlock',
      'DestinationIpv6CidrBlock',
      'DestinationPrefixListId',
    ],
  },
  'AWS::EC2::SubnetRouteTableAssociation': { createOnly: ['RouteTableId', 'SubnetId'] },
  'AWS::EC2::InternetGateway': { createOnly: [] },
  'AWS::EC2::VPCGatewayAttachment': { createOnly: ['VpcId'] },
  'AWS::EC2::VPCEndpoint': {
    createOnly: [
      'VpcId',
      'ServiceName',
      'VpcEndpointType',
      'ServiceNetworkArn',
      'ResourceConfigurationArn',
      'ServiceRegion',
    ],
  },
  'AWS::EC2::EIP': {
    createOnly: ['Domain', 'NetworkBorderGroup', 'TransferAddress', 'IpamPoolId', 'Address'],
  },
  'AWS::EC2::NatGateway': {
    createOnly: [
      'SubnetId',
      'AllocationId',
      'ConnectivityType',
      'PrivateIpAddress',
      'VpcId',
      'AvailabilityMode',
    ],
  },
  'AWS::EC2::FlowLog': {
    createOnly: [
      'ResourceId',
      'ResourceType',
      'TrafficType',
      'LogDestination',
      'LogDestinationType',
      'LogFormat',
      'LogGroupName',
      'MaxAggregationInterval',
      'DestinationOptions',
      'DeliverLogsPermissionArn',
      'DeliverCrossAccountRole',
      'TagFieldSpecifications',
    ],
  },
  'AWS::Lambda::Function': {
    createOnly: ['FunctionName', 'PackageType', 'TenancyConfig'],
    nameProperty: 'FunctionName',
  },
};

/**
 * ComputeResources settings whose change AWS Batch makes as an infrastructure update
 * (instances replaced); the rest (MaxvCpus, MinvCpus, DesiredvCpus) are scaling updates.
 */
const infrastructureUpdateSettings = [
  'AllocationStrategy',
  'BidPercentage',
  'Ec2Configuration',
  'Ec2KeyPair',
  'ImageId',
  'InstanceRole',
  'InstanceTypes',
  'LaunchTemplate',
  'PlacementGroup',
  'SecurityGroupIds',
  'Subnets',
  'Tags',
  'Type',
  'UpdateToLatestImageVersion',
];

/**
 * With ReplaceComputeEnvironment true (CloudFormation's default), a change to any of these
 * replaces the compute environment (the list of the ReplaceComputeEnvironment docs).
 */
const replacedUnlessInfrastructureUpdate = [...infrastructureUpdateSettings, 'MaxvCpus', 'MinvCpus'];

const infrastructureUpdateStrategies = [
  'BEST_FIT_PROGRESSIVE',
  'SPOT_CAPACITY_OPTIMIZED',
  'SPOT_PRICE_CAPACITY_OPTIMIZED',
];

/** Attributes whose value changes when the resource is updated in place. */
const attributesChangedByUpdate: Readonly<Record<string, readonly string[]>> = {
  'AWS::EC2::LaunchTemplate': ['LatestVersionNumber', 'DefaultVersionNumber'],
};

export interface ResourceChange {
  readonly logicalId: string;
  readonly type: string;
  /**
   * `replace`: a new resource, then the old one deleted; `infrastructure-update`: a compute
   * environment keeps its identity and replaces its instances; `fails`: CloudFormation
   * cannot make the update.
   */
  readonly action: 'replace' | 'infrastructure-update' | 'fails';
  /** The properties (dotted for nested ones) that cause it, or why it fails. */
  readonly because: readonly string[];
  /** The fixed name both the old and the new resource would have: the update fails on it. */
  readonly conflictingName?: string;
}

type Resource = TemplateJson['Resources'][string];
type Props = Record<string, unknown>;

function isRecord(value: unknown): value is Props {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Whether a value resolves differently because something it references changes. */
function referencesChange(
  value: unknown,
  replaced: ReadonlySet<string>,
  updated: ReadonlySet<string>,
  types: (id: string) => string | undefined,
): boolean {
  if (Array.isArray(value)) return value.some((v) => referencesChange(v, replaced, updated, types));
  if (!isRecord(value)) return false;
  if (typeof value.Ref === 'string' && replaced.has(value.Ref)) return true;
  const getAtt = value['Fn::GetAtt'];
  if (Array.isArray(getAtt) && typeof getAtt[0] === 'string') {
    const [id, attribute] = getAtt as [string, string];
    if (replaced.has(id)) return true;
    if (updated.has(id) && (attributesChangedByUpdate[types(id) ?? ''] ?? []).includes(attribute))
      return true;
  }
  return Object.values(value).some((v) => referencesChange(v, replaced, updated, types));
}

function fixedName(resource: Resource, rules: ResourceRules | undefined): string | undefined {
  const name = rules?.nameProperty ? resource.Properties?.[rules.nameProperty] : undefined;
  return typeof name === 'string' ? name : undefined;
}

function rulesOf(type: string): ResourceRules {
  // custom resources are updated by their provider, which decides what to replace
  if (type.startsWith('Custom::')) return { createOnly: [] };
  const rules = resourceRules[type];
  if (!rules)
    throw new Error(`replacement.ts: no createOnlyProperties for ${type}: add them from its resource schema`);
  return rules;
}

function classify(
  id: string,
  before: Resource,
  after: Resource,
  changed: (a: unknown, b: unknown) => boolean,
): Omit<ResourceChange, 'conflictingName'> | 'update' | undefined {
  const a = before.Properties ?? {};
  const b = after.Properties ?? {};
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  const changedKeys = keys.filter((k) => changed(a[k], b[k]));
  if (changedKeys.length === 0) return undefined;
  const type = after.Type;
  const createOnly = changedKeys.filter((k) => rulesOf(type).createOnly.includes(k));
  if (type !== 'AWS::Batch::ComputeEnvironment' || createOnly.length > 0) {
    return createOnly.length > 0 ? { logicalId: id, type, action: 'replace', because: createOnly } : 'update';
  }
  const resourcesBefore = isRecord(a.ComputeResources) ? a.ComputeResources : {};
  const resourcesAfter = isRecord(b.ComputeResources) ? b.ComputeResources : {};
  const settings = [...new Set([...Object.keys(resourcesBefore), ...Object.keys(resourcesAfter)])].filter(
    (k) => changed(resourcesBefore[k], resourcesAfter[k]),
  );
  // CloudFormation reads the new template's ReplaceComputeEnvironment; absent means true
  if (b.ReplaceComputeEnvironment !== false) {
    const replacing = settings.filter((k) => replacedUnlessInfrastructureUpdate.includes(k));
    return replacing.length > 0
      ? { logicalId: id, type, action: 'replace', because: replacing.map((k) => `ComputeResources.${k}`) }
      : 'update';
  }
  const infrastructure = settings.filter((k) => infrastructureUpdateSettings.includes(k));
  if (infrastructure.length === 0) return 'update';
  const strategy = String(resourcesBefore.AllocationStrategy ?? 'BEST_FIT');
  const problems = [
    ...(infrastructureUpdateStrategies.includes(strategy)
      ? []
      : [`AllocationStrategy ${strategy} does not support infrastructure updates`]),
    ...(b.ServiceRole !== undefined &&
    !String(JSON.stringify(b.ServiceRole)).includes('AWSServiceRoleForBatch')
      ? ['infrastructure updates need the AWSServiceRoleForBatch service-linked role']
      : []),
  ];
  if (problems.length > 0) return { logicalId: id, type, action: 'fails', because: problems };
  return {
    logicalId: id,
    type,
    action: 'infrastructure-update',
    because: infrastructure.map((k) => `ComputeResources.${k}`),
  };
}

/** Every replacement, compute environment infrastructure update and impossible update from A to B. */
export function changesBetween(before: TemplateJson, after: TemplateJson): ResourceChange[] {
  const types = (id: string) => after.Resources[id]?.Type;
  const common = Object.keys(after.Resources).filter(
    (id) => before.Resources[id]?.Type === after.Resources[id]?.Type,
  );
  let replaced = new Set<string>();
  let updated = new Set<string>();
  let result: Map<string, ResourceChange> = new Map();
  // a replaced resource changes every Ref to it, which can replace more: iterate to a fixed point
  for (;;) {
    const changed = (a: unknown, b: unknown) => !same(a, b) || referencesChange(b, replaced, updated, types);
    const nextReplaced = new Set<string>();
    const nextUpdated = new Set<string>();
    const next = new Map<string, ResourceChange>();
    for (const id of common) {
      const outcome = classify(id, before.Resources[id]!, after.Resources[id]!, changed);
      if (outcome === undefined) continue;
      nextUpdated.add(id);
      if (outcome === 'update') continue;
      const name = fixedName(after.Resources[id]!, resourceRules[outcome.type]);
      const conflicts =
        outcome.action === 'replace' &&
        name !== undefined &&
        name === fixedName(before.Resources[id]!, resourceRules[outcome.type]) &&
        !rulesOf(outcome.type).replacementReusesName;
      if (outcome.action === 'replace') nextReplaced.add(id);
      next.set(id, { ...outcome, ...(conflicts ? { conflictingName: name } : {}) });
    }
    const stable =
      same([...nextReplaced].sort(), [...replaced].sort()) &&
      same([...nextUpdated].sort(), [...updated].sort());
    replaced = nextReplaced;
    updated = nextUpdated;
    result = next;
    if (stable) break;
  }
  // a fixed name that moves to another logical id is created under the new id before the old goes
  for (const [id, resource] of Object.entries(after.Resources)) {
    if (before.Resources[id]?.Type === resource.Type) continue;
    const rules = resourceRules[resource.Type];
    const name = fixedName(resource, rules);
    if (name === undefined || rules?.replacementReusesName) continue;
    const moved = Object.entries(before.Resources).find(
      ([oldId, old]) => old.Type === resource.Type && oldId !== id && fixedName(old, rules) === name,
    );
    if (moved && after.Resources[moved[0]]?.Type !== resource.Type) {
      result.set(id, {
        logicalId: id,
        type: resource.Type,
        action: 'replace',
        because: [`logical id ${moved[0]} -> ${id}`],
        conflictingName: name,
      });
    }
  }
  return [...result.values()].sort((x, y) => x.logicalId.localeCompare(y.logicalId));
}

/** The changes an update cannot survive: replacements keeping a fixed name, and refused updates. */
export function failingChanges(changes: readonly ResourceChange[]): ResourceChange[] {
  return changes.filter((c) => c.action === 'fails' || c.conflictingName !== undefined);
}

interface RetainableResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly DeletionPolicy?: string;
}

function resourcesOf(template: TemplateJson): [string, RetainableResource][] {
  return Object.entries(template.Resources as Record<string, RetainableResource>);
}

const keptPolicies = ['Retain', 'RetainExceptOnCreate'];

/**
 * Types CloudFormation can import (resource-import-supported-resources) whose primary
 * identifier is their name, as `--import-existing-resources` needs.
 */
const importableByName = new Set([
  'AWS::S3::Bucket',
  'AWS::ECR::Repository',
  'AWS::Logs::LogGroup',
  'AWS::IAM::Role',
  'AWS::SSM::Parameter',
  'AWS::Batch::JobDefinition',
]);

export interface KeptResource {
  readonly logicalId: string;
  readonly type: string;
  /** Its fixed name; undefined when CloudFormation generated one (a redeploy makes a new one). */
  readonly name?: string;
}

/** What `cdk destroy` leaves in the account: the resources whose DeletionPolicy keeps them. */
export function keptOnDelete(template: TemplateJson): KeptResource[] {
  return resourcesOf(template)
    .filter(([, r]) => keptPolicies.includes(r.DeletionPolicy ?? 'Delete'))
    .map(([logicalId, r]) => {
      const name = fixedName(r, resourceRules[r.Type]);
      return { logicalId, type: r.Type, ...(name !== undefined ? { name } : {}) };
    });
}

export interface RedeployConflict {
  readonly logicalId: string;
  readonly type: string;
  readonly name: string;
  readonly reason: string;
}

/**
 * The resources a new stack from `template` cannot create in an account still holding `kept`:
 * those named like a kept one. With `importExisting` (`cdk deploy --import-existing-resources`),
 * CloudFormation adopts such a resource instead when its name is a static string in the template,
 * its DeletionPolicy is Retain or RetainExceptOnCreate and its type can be imported by name.
 * @see https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/import-resources-automatically.html
 */
export function redeployConflicts(
  template: TemplateJson,
  kept: readonly KeptResource[],
  options: { readonly importExisting: boolean },
): RedeployConflict[] {
  const conflicts: RedeployConflict[] = [];
  for (const [logicalId, r] of resourcesOf(template)) {
    const nameProperty = resourceRules[r.Type]?.nameProperty;
    if (!nameProperty) continue;
    const written = r.Properties?.[nameProperty];
    const name = typeof written === 'string' ? written : undefined;
    const same = kept.find((k) => k.type === r.Type && k.name !== undefined && k.name === name);
    if (!same) continue;
    const base = { logicalId, type: r.Type, name: same.name! };
    if (!options.importExisting) {
      conflicts.push({ ...base, reason: 'already exists' });
    } else if (!importableByName.has(r.Type)) {
      conflicts.push({ ...base, reason: `already exists, and ${r.Type} cannot be imported by name` });
    } else if (!keptPolicies.includes(r.DeletionPolicy ?? 'Delete')) {
      conflicts.push({ ...base, reason: 'already exists, and importing it needs DeletionPolicy Retain' });
    }
  }
  // a kept resource whose name the template now computes is not matched by auto-import either
  if (options.importExisting) {
    for (const k of kept) {
      if (k.name === undefined) continue;
      const nameProperty = resourceRules[k.type]?.nameProperty;
      const dynamic = resourcesOf(template).find(
        ([, r]) => r.Type === k.type && nameProperty && typeof r.Properties?.[nameProperty] === 'object',
      );
      if (dynamic && !conflicts.some((c) => c.name === k.name)) {
        conflicts.push({
          logicalId: dynamic[0],
          type: k.type,
          name: k.name,
          reason: 'may already exist, and a name that is not a static string cannot be imported',
        });
      }
    }
  }
  return conflicts.sort((x, y) => x.logicalId.localeCompare(y.logicalId));
}
