import createError from '@fastify/error'

/**
 * Every error the HTTP API answers with, defined once: logs, metrics and tests name them by code.
 * 4xx messages are shown to the caller; a 5xx answer never carries its message.
 */
export const Errors = {
  INVALID_REQUEST: createError('INVALID_REQUEST', 'Invalid request: %s', 400),
  NOT_FOUND: createError('NOT_FOUND', 'No route %s', 404),
  UNAUTHORIZED: createError('UNAUTHORIZED', 'A valid admin bearer token is required', 401),
  METRICS_UNAUTHORIZED: createError('METRICS_UNAUTHORIZED', 'A valid METRICS_TOKEN bearer token is required', 401),

  STATE_COOKIE_MISSING: createError('STATE_COOKIE_MISSING', 'The install state cookie is missing: start the installation again from Wix in this browser', 400),
  STATE_MISMATCH: createError('STATE_MISMATCH', 'The state parameter does not match this browser\'s install state', 403),
  STATE_UNKNOWN: createError('STATE_UNKNOWN', 'The state parameter does not belong to any installation', 403),
  STATE_EXPIRED: createError('STATE_EXPIRED', 'This installation attempt has expired: start the installation again from Wix', 410),
  STATE_ALREADY_USED: createError('STATE_ALREADY_USED', 'This state has already been used: the callback was replayed', 409),
  RATE_LIMITED: createError('RATE_LIMITED', 'Too many requests from this address: retry in %s', 429),
  STARTS_LIMITED: createError('STARTS_LIMITED', 'Too many installations are starting right now: retry in %s', 429),
  FLOW_COOKIE_MISSING: createError('FLOW_COOKIE_MISSING', 'This browser has no installation in progress', 400),
  FLOW_COOKIE_INVALID: createError('FLOW_COOKIE_INVALID', 'The install flow cookie is not one this service set', 400),

  WEBHOOK_MALFORMED: createError('WEBHOOK_MALFORMED', 'The webhook is malformed: %s', 400),
  WEBHOOK_TOO_OLD: createError('WEBHOOK_TOO_OLD', 'The webhook was signed too long ago to be a delivery: a replay is refused', 401),
  WEBHOOK_EXPIRED: createError('WEBHOOK_EXPIRED', 'The webhook\'s signature has expired (its exp has passed)', 401),
  WEBHOOK_ISSUED_IN_FUTURE: createError('WEBHOOK_ISSUED_IN_FUTURE',
    'The webhook says it was signed in the future (its iat is ahead of this server\'s clock)', 401),
  WEBHOOK_SIGNATURE_INVALID: createError('WEBHOOK_SIGNATURE_INVALID', 'The webhook signature is not valid for this app\'s public key', 401),
  WEBHOOKS_NOT_CONFIGURED: createError('WEBHOOKS_NOT_CONFIGURED', 'Webhooks are not configured: set WIX_PUBLIC_KEY to the public key from the Wix app dashboard', 503),

  INSTALLATION_NOT_FOUND: createError('INSTALLATION_NOT_FOUND', 'No installation %s', 404),
  INSTALLATION_STATE_CONFLICT: createError('INSTALLATION_STATE_CONFLICT', '%s', 409),
  INVALID_CURSOR: createError('INVALID_CURSOR', 'The cursor is not one this API issued for a list in this order: keep created-at filters present (or absent) across pages', 400),
  REINSTALL_REQUIRED: createError('REINSTALL_REQUIRED', 'Wix rejected this installation\'s refresh token: the site owner must reinstall the app', 409),
  NO_TOKENS: createError('NO_TOKENS', 'Installation is %s: it has no tokens yet', 409),
  UNINSTALLED: createError('UNINSTALLED', 'The app was uninstalled from this site: its tokens are erased', 409),
  WIX_CREDENTIALS_REJECTED: createError('WIX_CREDENTIALS_REJECTED', 'Wix refused this app\'s client credentials: check WIX_APP_ID and WIX_APP_SECRET', 502),
  DATABASE_UNAVAILABLE: createError('DATABASE_UNAVAILABLE', 'The database is unavailable; try again shortly', 503),
  WIX_UNAVAILABLE: createError('WIX_UNAVAILABLE', 'Wix did not answer the token refresh; try again shortly', 503),
} as const
