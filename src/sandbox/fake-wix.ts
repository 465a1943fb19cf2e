/**
 * A fake of the Wix side of an app's life (installer pages, /oauth/access, client credentials on
 * /oauth2/token, the instance lookup, the bi-event, and signed AppInstalled/AppRemoved webhooks),
 * faithful to docs/design.md and docs/wix.md, with switches to make it fail. Serves sandbox mode and the tests.
 *
 * This file is its door; the parts live in fake-wix/:
 * - model.ts: the fake's state and what Wix does with it (model-types.ts: its interface), built of
 *   sites.ts (where the app is installed), grants.ts (codes and tokens; token-format.ts: how a token
 *   is written), failure-switches.ts (queued failures, held calls) and webhook-sender.ts;
 * - plugin.ts: the fake over HTTP, one plugin per group in routes/ (installer, oauth, api, control,
 *   panel; panel-page.ts renders the control panel), calls recorded and failures played by intercept.ts;
 * - standalone.ts: the fake alone on a port.
 */
export type {
  AppInstalledTiming, FakeWix, FakeWixFailure, FakeWixOptions, IssuedCode, RecordedRequest, SentWebhook,
} from './fake-wix/model-types.ts'
export { APP_TOKEN_TTL_SECONDS } from './fake-wix/grants.ts'
export { createFakeWix } from './fake-wix/model.ts'
export { SANDBOX_SWITCHES } from './fake-wix/panel-page.ts'
export { fakeWixPlugin } from './fake-wix/plugin.ts'
export { startFakeWix } from './fake-wix/standalone.ts'
