/**
 * The body of POST /_standin/solutions/<id>/versions: humans type it with curl, so typos are
 * refused loudly. What each field makes the instances' solutionVersionFlags say is described
 * on NewSolutionVersion (state.ts).
 */
import * as z from 'zod';

const slotId = z.string().min(1);

export const newSolutionVersionSchema = z.strictObject({
  addAuthSlots: z.array(z.strictObject({ externalId: slotId, title: z.string(), required: z.boolean().optional() })).optional(),
  addConfigSlots: z
    .array(
      z.strictObject({
        externalId: slotId,
        title: z.string(),
        defaultValue: z.json().optional(),
        required: z.boolean().optional(),
        hidden: z.boolean().optional(),
      }),
    )
    .optional(),
  requiresUserInput: z.boolean().optional(),
  requiresSystemInput: z.boolean().optional(),
});
