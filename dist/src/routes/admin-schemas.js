import { z } from 'zod';
/** Schemas shared by the /api routes: the error shape and the `:id` parameter. */
export const errorReply = z.object({ statusCode: z.number(), code: z.string(), error: z.string(), message: z.string() });
export const idParams = z.object({
    id: z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'must be an installation id or a Wix instanceId'),
});
