/** Parameters of the `embed` job (jobs/embed.ts), kept apart so the light catalog can import them. */
import { z } from 'zod';

export const embedParams = z
  .object({
    model: z
      .string()
      .min(1)
      .describe(
        'The model: a train stage of this pipeline (list it under needs) that trained a classification model, or the URI of a train output folder, its bundle.json or its model.onnx.',
      ),
    chips: z
      .string()
      .min(1)
      .describe(
        'What is embedded: a merge stage (its dataset: every split), a chip or chip-grid stage (its chip folders), each listed under needs, or the URI of a dataset or chip folder.',
      ),
    batchSize: z.number().int().min(1).max(1024).default(16).describe('Chips per model run.'),
    limit: z.number().int().min(1).optional().describe('Embed only the first n chips.'),
    device: z
      .enum(['cpu', 'cuda'])
      .optional()
      .describe('Execution provider. Default: GEOBATCH_DEVICE (cuda in the GPU image), else cpu.'),
  })
  .strict();

export type EmbedJobParams = z.output<typeof embedParams>;
