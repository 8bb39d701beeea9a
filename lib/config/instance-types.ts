/**
 * Which EC2 instance types each compute class may use. Entries are either a family (`m5`: any
 * size, Batch picks) or one type (`g5.2xlarge`).
 */

/**
 * GPU families the ECS_AL2023_NVIDIA AMI (the one AWS Batch uses for GPU compute since its
 * move to Amazon Linux 2023) runs on, all x86_64 with NVIDIA GPUs.
 * @see https://docs.aws.amazon.com/batch/latest/APIReference/API_Ec2Configuration.html
 */
export const supportedGpuFamilies = [
  'g4dn',
  'g5',
  'g6',
  'g6e',
  'gr6',
  'p4d',
  'p4de',
  'p5',
  'p5e',
  'p5en',
] as const;

/** GPU families whose NVIDIA generation the AL2023 GPU AMI no longer drives. */
export const retiredGpuFamilies = ['p2', 'p3', 'p3dn', 'g2', 'g3', 'g3s', 'g4ad'] as const;

const instanceTypePattern = /^[a-z][a-z0-9-]*[0-9][a-z0-9-]*(\.[a-z0-9]+)?$/;

export function isInstanceTypeName(name: string): boolean {
  return instanceTypePattern.test(name);
}

/** `g5.2xlarge` -> `g5`; `m5` -> `m5`. */
export function instanceFamily(name: string): string {
  const dot = name.indexOf('.');
  return dot === -1 ? name : name.slice(0, dot);
}

/** Graviton (`m6g`, `c7gn`, `r8gd`) and A1 families: arm64, which our amd64 images can't run on. */
export function isArmFamily(family: string): boolean {
  return family === 'a1' || /^[a-z]+\d+g[a-z]*$/.test(family);
}

/** Families with GPUs or other accelerators: a CPU job would pay for hardware it leaves idle. */
export function isAcceleratedFamily(family: string): boolean {
  return /^(g|gr|p|inf|trn|dl|f|vt)\d/.test(family);
}

/** Why `name` can't be a GPU compute instance type, or undefined when it can. */
export function gpuInstanceTypeProblem(name: string): string | undefined {
  const family = instanceFamily(name);
  if ((retiredGpuFamilies as readonly string[]).includes(family)) {
    return (
      `is not supported: AWS Batch runs GPU jobs on the ECS_AL2023_NVIDIA AMI, which does not support ${family}; ` +
      `use one of ${supportedGpuFamilies.join(', ')}`
    );
  }
  if (!(supportedGpuFamilies as readonly string[]).includes(family)) {
    return `has unknown GPU instance family '${family}'; known: ${supportedGpuFamilies.join(', ')}`;
  }
  return undefined;
}

/** Why `name` can't be a CPU compute instance type, or undefined when it can. */
export function cpuInstanceTypeProblem(name: string): string | undefined {
  const family = instanceFamily(name);
  if (isArmFamily(family)) {
    return `is an arm64 family ('${family}'); the job images are built for linux/amd64`;
  }
  if (isAcceleratedFamily(family)) {
    return `is an accelerated family ('${family}'); list GPU instances under compute.gpu.instanceTypes`;
  }
  return undefined;
}
