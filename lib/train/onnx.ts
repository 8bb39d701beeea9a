/**
 * Verifies the exported model.onnx: loads it with onnxruntime-node, runs it on the trainer's check
 * input (onnx-check-input.bin) and compares every output with the PyTorch one (onnx-check-*.bin).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TrainError } from './errors.js';

/** |onnx - torch| <= ATOL + RTOL * |torch| for every element. */
export const RTOL = 1e-3;
export const ATOL = 1e-3;

interface TensorFile {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype?: 'float32' | 'int64';
  readonly file: string;
}

interface CheckFile {
  readonly input: TensorFile;
  readonly outputs: readonly TensorFile[];
}

export interface OutputComparison {
  readonly name: string;
  readonly shape: readonly number[];
  readonly maxAbsDiff: number;
  readonly ok: boolean;
  /** Why not ok: a shape (length) or value difference. */
  readonly problem?: string;
  /** A difference that was accepted, and why (detections tied in score). */
  readonly note?: string;
}

export interface OnnxCheckResult {
  readonly ok: boolean;
  readonly runtime: string;
  readonly rtol: number;
  readonly atol: number;
  readonly inputShape: readonly number[];
  readonly outputs: readonly OutputComparison[];
  readonly seconds: number;
}

async function readTensor(dir: string, t: TensorFile): Promise<Float64Array> {
  const bytes = await readFile(join(dir, t.file));
  const count = t.shape.reduce((a, b) => a * b, 1);
  const width = t.dtype === 'int64' ? 8 : 4;
  if (bytes.length !== count * width) {
    throw new TrainError(
      'onnx',
      `${join(dir, t.file)}: ${bytes.length} bytes, expected ${count * width} for shape [${t.shape.join(', ')}] of ${t.dtype ?? 'float32'}`,
    );
  }
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    out[i] = width === 8 ? Number(bytes.readBigInt64LE(i * 8)) : bytes.readFloatLE(i * 4);
  }
  return out;
}

function asNumbers(data: unknown): Float64Array {
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) return Float64Array.from(data, Number);
  return Float64Array.from(data as ArrayLike<number>);
}

/** Compares two outputs; shapes must agree (for detection: as many boxes, scores and labels). */
export function compareOutput(
  name: string,
  expected: Float64Array,
  expectedShape: readonly number[],
  actual: Float64Array,
  actualShape: readonly number[],
): OutputComparison {
  if (expectedShape.length !== actualShape.length || expectedShape.some((d, i) => d !== actualShape[i])) {
    return {
      name,
      shape: actualShape,
      maxAbsDiff: Number.POSITIVE_INFINITY,
      ok: false,
      problem: `shape [${actualShape.join(', ')}] from onnxruntime, [${expectedShape.join(', ')}] from PyTorch`,
    };
  }
  let maxAbsDiff = 0;
  let worst: string | undefined;
  for (let i = 0; i < expected.length; i++) {
    const diff = Math.abs(actual[i]! - expected[i]!);
    if (!(diff <= ATOL + RTOL * Math.abs(expected[i]!))) {
      worst ??= `element ${i}: onnxruntime ${actual[i]}, PyTorch ${expected[i]}`;
    }
    if (diff > maxAbsDiff || Number.isNaN(diff))
      maxAbsDiff = Number.isNaN(diff) ? Number.POSITIVE_INFINITY : diff;
  }
  return {
    name,
    shape: actualShape,
    maxAbsDiff,
    ok: worst === undefined,
    ...(worst ? { problem: worst } : {}),
  };
}

const close = (a: number, b: number) => Math.abs(a - b) <= ATOL + RTOL * Math.abs(b);

/** Score gap under which two detections count as tied (their NMS / top-k order may flip between runtimes). */
export const DETECTION_TIE = 1e-2;
/** Share of detections that may differ when every one of them is tied with a neighbour. */
export const DETECTION_TIE_SHARE = 0.05;

interface Detections {
  readonly boxes: Float64Array;
  readonly labels: Float64Array;
  readonly scores: Float64Array;
}

function describeDetection(d: Detections, i: number): string {
  return `label ${d.labels[i]}, score ${d.scores[i]!.toFixed(5)}, box [${[...d.boxes.subarray(4 * i, 4 * i + 4)].map((v) => v.toFixed(2)).join(', ')}]`;
}

/** Whether detection i has another detection of its own side within DETECTION_TIE of its score. */
function tied(d: Detections, i: number): boolean {
  for (let j = 0; j < d.scores.length; j++) {
    if (j !== i && Math.abs(d.scores[j]! - d.scores[i]!) <= DETECTION_TIE) return true;
  }
  return false;
}

/**
 * Detection outputs (boxes [N,4], labels [N], scores [N]) compared as sets: both sides must find as
 * many detections, and each PyTorch detection must have an onnxruntime one (used once) with the
 * same label and box and score within tolerance. Detections of near-equal score may come out of
 * NMS and the top-k cut in another order, so a few unmatched ones (at most DETECTION_TIE_SHARE of
 * them, each tied within DETECTION_TIE with another of its side) are reported but not a failure:
 * an untrained detector scores everything alike. A broken export differs on most detections.
 */
export function compareDetections(expected: Detections, actual: Detections): OutputComparison[] {
  const n = expected.scores.length;
  const names = ['boxes', 'labels', 'scores'] as const;
  const shapes = {
    boxes: [actual.scores.length, 4],
    labels: [actual.scores.length],
    scores: [actual.scores.length],
  };
  if (actual.scores.length !== n || actual.boxes.length !== 4 * n || actual.labels.length !== n) {
    const problem = `${actual.scores.length} detections from onnxruntime, ${n} from PyTorch`;
    return names.map((name) => ({
      name,
      shape: shapes[name],
      maxAbsDiff: Number.POSITIVE_INFINITY,
      ok: false,
      problem,
    }));
  }
  const used = new Uint8Array(n);
  const diff = { boxes: 0, labels: 0, scores: 0 };
  const unmatchedTorch: number[] = [];
  for (let i = 0; i < n; i++) {
    let best = -1;
    let bestDiff = Number.POSITIVE_INFINITY;
    for (let j = 0; j < n; j++) {
      if (
        used[j] ||
        actual.labels[j] !== expected.labels[i] ||
        !close(actual.scores[j]!, expected.scores[i]!)
      )
        continue;
      let d = 0;
      let ok = true;
      for (let k = 0; k < 4; k++) {
        const a = actual.boxes[4 * j + k]!;
        const e = expected.boxes[4 * i + k]!;
        ok &&= close(a, e);
        d = Math.max(d, Math.abs(a - e));
      }
      if (ok && d < bestDiff) {
        best = j;
        bestDiff = d;
      }
    }
    if (best < 0) {
      unmatchedTorch.push(i);
      continue;
    }
    used[best] = 1;
    diff.boxes = Math.max(diff.boxes, bestDiff);
    diff.scores = Math.max(diff.scores, Math.abs(actual.scores[best]! - expected.scores[i]!));
  }
  const unmatchedOrt = [...used.keys()].filter((j) => !used[j]);
  const excused =
    unmatchedTorch.length <= Math.floor(DETECTION_TIE_SHARE * n) &&
    unmatchedTorch.every((i) => tied(expected, i)) &&
    unmatchedOrt.every((j) => tied(actual, j));
  let problem: string | undefined;
  let note: string | undefined;
  if (unmatchedTorch.length > 0) {
    const first = unmatchedTorch[0]!;
    const text = `${unmatchedTorch.length} of ${n} PyTorch detections have no onnxruntime match (first: ${describeDetection(expected, first)}; onnxruntime has instead ${unmatchedOrt
      .slice(0, 2)
      .map((j) => describeDetection(actual, j))
      .join('; ')})`;
    if (excused)
      note = `${text}: all tied within ${DETECTION_TIE} of another score, accepted as an NMS order flip`;
    else problem = text;
  }
  return names.map((name) => ({
    name,
    shape: shapes[name],
    maxAbsDiff: problem ? Number.POSITIVE_INFINITY : diff[name],
    ok: problem === undefined,
    ...(problem ? { problem } : {}),
    ...(note ? { note } : {}),
  }));
}

/**
 * Runs `<dir>/model.onnx` on the check input and compares with the PyTorch outputs. Resolves with
 * the comparison (ok or not); throws a TrainError('onnx') when the files are missing or the model
 * does not load or run.
 */
export async function verifyOnnx(dir: string): Promise<OnnxCheckResult> {
  const started = performance.now();
  const checkPath = join(dir, 'onnx-check.json');
  let check: CheckFile;
  try {
    check = JSON.parse(await readFile(checkPath, 'utf8')) as CheckFile;
  } catch (error) {
    throw new TrainError('onnx', `${checkPath}: cannot read the ONNX check (${(error as Error).message})`);
  }
  const ort = await import('onnxruntime-node');
  const input = await readTensor(dir, check.input);
  let session: Awaited<ReturnType<typeof ort.InferenceSession.create>>;
  try {
    session = await ort.InferenceSession.create(join(dir, 'model.onnx'));
  } catch (error) {
    throw new TrainError(
      'onnx',
      `${join(dir, 'model.onnx')}: onnxruntime cannot load it: ${(error as Error).message}`,
    );
  }
  let results: Record<string, { data: unknown; dims: readonly number[] }>;
  try {
    const feeds = {
      [check.input.name]: new ort.Tensor('float32', Float32Array.from(input), [...check.input.shape]),
    };
    results = await session.run(feeds);
  } catch (error) {
    throw new TrainError(
      'onnx',
      `${join(dir, 'model.onnx')}: onnxruntime cannot run it: ${(error as Error).message}`,
    );
  } finally {
    await session.release();
  }
  const outputs: OutputComparison[] = [];
  const got: Record<string, { data: Float64Array; dims: readonly number[] }> = {};
  const want: Record<string, Float64Array> = {};
  for (const out of check.outputs) {
    const result = results[out.name];
    if (!result) {
      outputs.push({
        name: out.name,
        shape: [],
        maxAbsDiff: Number.POSITIVE_INFINITY,
        ok: false,
        problem: 'no such output in the ONNX model',
      });
      continue;
    }
    got[out.name] = { data: asNumbers(result.data), dims: result.dims };
    want[out.name] = await readTensor(dir, out);
  }
  const detection =
    ['boxes', 'labels', 'scores'].every((n) => got[n] && want[n]) && check.outputs.length === 3;
  if (detection) {
    outputs.push(
      ...compareDetections(
        { boxes: want['boxes']!, labels: want['labels']!, scores: want['scores']! },
        { boxes: got['boxes']!.data, labels: got['labels']!.data, scores: got['scores']!.data },
      ),
    );
  } else {
    for (const out of check.outputs) {
      if (got[out.name])
        outputs.push(
          compareOutput(out.name, want[out.name]!, out.shape, got[out.name]!.data, got[out.name]!.dims),
        );
    }
  }
  return {
    ok: outputs.every((o) => o.ok),
    runtime: `onnxruntime-node ${ort.env.versions.node ?? ''}`.trim(),
    rtol: RTOL,
    atol: ATOL,
    inputShape: check.input.shape,
    outputs,
    seconds: (performance.now() - started) / 1000,
  };
}

/** Throws a TrainError('onnx') naming the outputs that differ; `model` names the model in the message. */
export function assertOnnxMatches(result: OnnxCheckResult, model: string): void {
  if (result.ok) return;
  const bad = result.outputs.filter((o) => !o.ok).map((o) => `${o.name}: ${o.problem}`);
  throw new TrainError(
    'onnx',
    `${model} does not match the PyTorch model (tolerance ${RTOL} relative + ${ATOL} absolute): ${bad.join('; ')}`,
  );
}
