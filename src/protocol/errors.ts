import { z } from 'zod';

/** OpenAI's error envelope: `{"error": {"message", "type", "param", "code"}}`. */
export const ErrorEnvelopeSchema = z.object({
  error: z.object({
    message: z.string(),
    type: z.string(),
    param: z.string().nullable(),
    code: z.string().nullable(),
  }),
});
export type ErrorEnvelope = z.infer<typeof ErrorEnvelopeSchema>;
