/**
 * The images install `dependencies` only (`npm prune --omit=dev`): every package the job entry
 * point and the CLI can import at run time must be one of them. Walks the import graph of the
 * sources from bin/job.ts and bin/geobatch.ts: imports, import() and require(), type-only imports aside.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = fileURLToPath(new URL('../..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

/** import(x), require(x) and createRequire(...)(x): the calls that load a module by name. */
const loads = (callee: ts.Expression) =>
  callee.kind === ts.SyntaxKind.ImportKeyword ||
  (ts.isIdentifier(callee) && callee.text === 'require') ||
  (ts.isCallExpression(callee) &&
    ts.isIdentifier(callee.expression) &&
    callee.expression.text === 'createRequire');

/** Module specifiers a file imports or requires at run time (erased type-only imports left out). */
function runtimeImports(file: string, text = readFileSync(file, 'utf8')): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const typeOnly =
        clause?.isTypeOnly === true ||
        (clause !== undefined &&
          clause.name === undefined &&
          clause.namedBindings !== undefined &&
          ts.isNamedImports(clause.namedBindings) &&
          clause.namedBindings.elements.length > 0 &&
          clause.namedBindings.elements.every((e) => e.isTypeOnly));
      if (!typeOnly) found.push(node.moduleSpecifier.text);
    } else if (
      ts.isExportDeclaration(node) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      if (!node.isTypeOnly) found.push(node.moduleSpecifier.text);
    } else if (ts.isCallExpression(node) && node.arguments[0] !== undefined && loads(node.expression)) {
      const arg = node.arguments[0];
      assert.ok(ts.isStringLiteralLike(arg), `${relative(root, file)}: a module loaded by a computed name`);
      found.push(arg.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

function resolveLocal(from: string, specifier: string): string {
  const base = join(dirname(from), specifier);
  for (const candidate of [base.replace(/\.js$/, '.ts'), `${base}.ts`, join(base, 'index.ts'), base]) {
    if (existsSync(candidate) && candidate.endsWith('.ts')) return candidate;
  }
  assert.fail(`${relative(root, from)}: cannot resolve ${specifier}`);
}

const packageName = (specifier: string) =>
  specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!;

/** Every package imported by the files reachable from `entries`, with one importing file each. */
function closure(entries: string[]): { files: Set<string>; packages: Map<string, string> } {
  const files = new Set<string>();
  const packages = new Map<string, string>();
  const queue = entries.map((e) => join(root, e));
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    for (const specifier of runtimeImports(file)) {
      if (specifier.startsWith('.')) queue.push(resolveLocal(file, specifier));
      else if (!specifier.startsWith('node:') && !builtinModules.includes(specifier)) {
        if (!packages.has(packageName(specifier))) packages.set(packageName(specifier), relative(root, file));
      }
    }
  }
  return { files, packages };
}

describe('the runtime closure of bin/job.ts and bin/geobatch.ts', () => {
  const { files, packages } = closure(['bin/job.ts', 'bin/geobatch.ts']);

  it('imports only packages of "dependencies", never a devDependency', () => {
    assert.ok(files.size > 20, `walked ${files.size} files`);
    assert.ok(packages.has('@julusian/jpeg-turbo'), 'the walk sees lib/chip/jpeg.ts require its binding');
    for (const [name, importer] of packages) {
      assert.ok(!(name in pkg.devDependencies), `${importer} imports the devDependency ${name}`);
      assert.ok(name in pkg.dependencies, `${importer} imports ${name}, which is not in dependencies`);
    }
  });

  it('does not reach the infrastructure code (lib/infra), which only bin/app.ts runs', () => {
    const infra = [...files].map((f) => relative(root, f)).filter((f) => f.startsWith('lib/infra/'));
    assert.deepEqual(infra, []);
  });

  it('keeps the CDK libraries out of "dependencies"', () => {
    for (const name of ['aws-cdk-lib', 'constructs', 'cdk-nag', 'aws-cdk']) {
      assert.ok(!(name in pkg.dependencies), `${name} is in dependencies`);
    }
    const { packages: app } = closure(['bin/app.ts']);
    assert.ok(app.has('aws-cdk-lib'), 'the walk sees the CDK app import aws-cdk-lib');
  });

  it('ignores type-only imports, which compile away', () => {
    const text = [
      "import type { A } from 'erased-a';",
      "import { type B } from 'erased-b';",
      "import { kept } from 'kept';",
      "export type { C } from 'erased-c';",
      "export { run } from './runtime.js';",
      "const lazy = await import('lazy');",
      "const native = createRequire(import.meta.url)('native');",
      "const require = createRequire(import.meta.url); require('data/x.json');",
    ].join('\n');
    assert.deepEqual(runtimeImports(join(root, 'x.ts'), text).sort(), [
      './runtime.js',
      'data/x.json',
      'kept',
      'lazy',
      'native',
    ]);
  });
});
