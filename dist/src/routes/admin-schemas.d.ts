import { z } from 'zod';
/** Schemas shared by the /api routes: the error shape and the `:id` parameter. */
export declare const errorReply: z.ZodObject<{
    statusCode: z.ZodNumber;
    code: z.ZodString;
    error: z.ZodString;
    message: z.ZodString;
}, z.core.$strip>;
export declare const idParams: z.ZodObject<{
    id: z.ZodString;
}, z.core.$strip>;
