/**
 * The one error of bad construct props: names the construct, the prop, the value and the rule,
 * e.g. `BatchCompute 'Gpu' has 'minvCpus' = 16: must be <= 'maxvCpus' = 8`.
 */
export function invalidProp(
  construct: string,
  id: string,
  prop: string,
  value: unknown,
  rule: string,
): Error {
  const shown = value === undefined ? '(missing)' : JSON.stringify(value);
  return new Error(`${construct} '${id}' has '${prop}' = ${shown}: ${rule}`);
}
