import createError from '@fastify/error'

/** The console's own refusals, named like the API's (src/errors.ts). */
export const ConsoleErrors = {
  CONSOLE_SIGNED_OUT: createError(
    'CONSOLE_SIGNED_OUT', 'Sign in to the console first (the session is missing or has expired)', 401),
  CONSOLE_FORBIDDEN: createError('CONSOLE_FORBIDDEN', '%s', 403),
  CONSOLE_NOT_CONFIRMED: createError('CONSOLE_NOT_CONFIRMED', 'The action was not confirmed', 400),
  CONSOLE_INSPECTOR_OFF: createError(
    'CONSOLE_INSPECTOR_OFF', 'The XState inspector is off: start the service with INSPECT set', 409),
} as const
