/**
 * cdk-nag AwsSolutions over the whole app (every environment, CI role included): synthesis
 * passes with no unacknowledged finding; every acknowledgement carries a specific reason and
 * silences a finding that really exists.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { Validations, type App } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ciEnvironments, platformStacks } from './helpers.js';
import { catalog } from '../../jobs/catalog.js';

interface Acknowledgement {
  readonly path: string;
  readonly id: string;
  readonly reason: string;
}

interface Finding {
  readonly path: string;
  readonly rule: string;
}

function checkedApp(): App {
  const { app } = platformStacks({ 'geobatch:environments': ciEnvironments });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return app;
}

/** Acknowledgements of cdk-nag rules (CDK acknowledges some of its own CloudFormation-Validate rules). */
function acknowledgementsOf(app: App): Acknowledgement[] {
  const out: Acknowledgement[] = [];
  for (const construct of app.node.findAll()) {
    for (const entry of construct.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) {
        if (id.startsWith('AwsSolutions::')) out.push({ path: construct.node.path, id, reason });
      }
    }
  }
  return out;
}

function findingsOf(app: App): Finding[] {
  const report = JSON.parse(readFileSync(join(app.outdir, 'validation-report.json'), 'utf8')) as {
    pluginReports: { violations: { ruleName: string; violatingConstructs: { constructPath: string }[] }[] }[];
  };
  return report.pluginReports.flatMap((r) =>
    r.violations.flatMap((v) =>
      v.violatingConstructs.map((c) => ({ path: c.constructPath, rule: v.ruleName })),
    ),
  );
}

let checked: App;
let synthError: unknown;
let acknowledgements: Acknowledgement[];

before(() => {
  checked = checkedApp();
  try {
    checked.synth();
  } catch (error) {
    synthError = error;
  }
  acknowledgements = acknowledgementsOf(checked);
});

describe('cdk-nag AwsSolutions', () => {
  it('finds nothing unacknowledged in the whole app', () => {
    assert.equal(synthError, undefined, String(synthError));
    assert.deepEqual(findingsOf(checked), []);
  });

  it('has exactly these acknowledgements', () => {
    const perStack = (stack: string) =>
      acknowledgements
        .filter((a) => a.path.startsWith(`${stack}/`))
        .map((a) => `${a.path.slice(stack.length + 1)} ${a.id}`)
        .sort();
    const expected = (env: string) => [
      'CiPublisher/Role AwsSolutions::AwsSolutions-IAM5[Resource::*]',
      'CpuCompute/InstanceRole AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role]',
      'GpuCompute/InstanceRole AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role]',
      'JobDefinitions/ExecutionRole AwsSolutions::AwsSolutions-IAM5[Resource::*]',
      'JobRole/Role AwsSolutions::AwsSolutions-IAM5[Resource::<ProcessedBucket745F36E0.Arn>/*]',
      'JobRole/Role AwsSolutions::AwsSolutions-IAM5[Resource::<RawBucket672A0DBB.Arn>/*]',
      'JobRole/Role AwsSolutions::AwsSolutions-IAM5[Resource::<RunsBucket7FD68A9D.Arn>/*]',
      'OperatorPolicy/Policy AwsSolutions::AwsSolutions-IAM5[Resource::*]',
      'OperatorPolicy/Policy AwsSolutions::AwsSolutions-IAM5[Resource::<ProcessedBucket745F36E0.Arn>/*]',
      'OperatorPolicy/Policy AwsSolutions::AwsSolutions-IAM5[Resource::<RawBucket672A0DBB.Arn>/*]',
      'OperatorPolicy/Policy AwsSolutions::AwsSolutions-IAM5[Resource::<RunsBucket7FD68A9D.Arn>/*]',
      ...Object.keys(catalog).map(
        (job) =>
          `OperatorPolicy/Policy AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:batch:<AWS::Region>:<AWS::AccountId>:job-definition/geobatch-${env}-${job}:*]`,
      ),
      'OperatorPolicy/Policy AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:batch:<AWS::Region>:<AWS::AccountId>:job/*]',
    ];
    assert.deepEqual(perStack('geobatch-dev'), expected('dev').sort());
    assert.deepEqual(perStack('geobatch-prod'), expected('prod').sort());
  });

  it('gives every acknowledgement a specific reason', () => {
    for (const a of acknowledgements) {
      assert.ok(a.reason.length >= 80, `${a.path} ${a.id}: the reason is too short to be specific`);
      assert.doesNotMatch(
        a.reason,
        /^(n\/?a|ok|todo|fine|needed|required|not needed)\b/i,
        `${a.path} ${a.id}`,
      );
    }
    const reasonsByRule = new Map<string, Set<string>>();
    for (const a of acknowledgements) {
      const rule = a.id.replace(/\[.*$/, '');
      reasonsByRule.set(rule, (reasonsByRule.get(rule) ?? new Set()).add(a.reason));
    }
    assert.ok(
      (reasonsByRule.get('AwsSolutions::AwsSolutions-IAM5')?.size ?? 0) >= 3,
      'IAM5 reasons differ by cause',
    );
  });

  it('acknowledges only findings that exist: without the acknowledgements, exactly those are reported', () => {
    const acknowledge = Validations.prototype.acknowledge;
    Validations.prototype.acknowledge = () => {};
    let app: App;
    try {
      app = checkedApp();
    } finally {
      Validations.prototype.acknowledge = acknowledge;
    }
    assert.throws(() => app.synth(), /Validation failed/);
    const findings = findingsOf(app).map((f) => `${f.path} ${f.rule}`);
    for (const a of acknowledgements) {
      const rule = a.id.replace(/^AwsSolutions::/, '');
      assert.ok(
        findings.some((f) => f.startsWith(`${a.path}/`) && f.endsWith(` ${rule}`)),
        `${a.path} ${a.id} acknowledges nothing`,
      );
    }
    assert.equal(findings.length, acknowledgements.length);
  });
});
