import { z } from 'zod'

export const errorReply = z.object({ statusCode: z.number(), code: z.string(), error: z.string(), message: z.string() })
export const errorReplies = { 400: errorReply, 403: errorReply, 409: errorReply, 410: errorReply, 429: errorReply }
/** Pages for the browser, sent as they are. */
export const page = z.string().describe('An HTML page')
