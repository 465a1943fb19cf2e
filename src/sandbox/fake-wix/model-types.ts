/** What the fake Wix is: the model's interface, its options and the records it keeps. */

export interface FakeWixOptions {
  appId: string
  appSecret: string
  /** The app's webhook signing key (PKCS#8 PEM); one is generated when none is given. */
  webhookPrivateKey?: string
  /** The app's registered Redirect URL and webhook URL, when known at start (see `register`). */
  redirectUrl?: string
  webhookUrl?: string
  now?: () => number
  codeTtlMs?: number
  accessTokenTtlMs?: number
  /**
   * Lets `installer/approve?instanceId=…` choose the site a code is issued for. Tests use it to
   * name their instances; a sandbox open to a browser must not (anyone could pick any site).
   */
  allowForcedInstanceId?: boolean
  /** When the installer's Approve sends AppInstalled (see `FakeWix.appInstalledOnApprove`); default never. */
  appInstalledOnApprove?: AppInstalledTiming
}

/**
 * Whether Wix sends AppInstalled to a legacy app before its browser reaches the Redirect URL or
 * after, is not documented: the fake plays each. `before`: posted (and answered) before the
 * browser is redirected; `after`: posted once the code has been exchanged; `never`: not at all.
 */
export type AppInstalledTiming = 'before' | 'after' | 'never'

export type FakeEndpoint = 'oauth/access' | 'oauth2/token' | 'oauth2/token-info' | 'apps/v1/instance' | 'bi-event'

export interface SentWebhook {
  eventType: string
  instanceId: string
  /** The app's answer; 0 when it could not be reached. */
  status: number
  at: number
}

export interface FakeWixFailure {
  endpoint: FakeEndpoint | 'any'
  grant?: 'authorization_code' | 'refresh_token' | 'client_credentials'
  /** e.g. 500, 503, 429, 400, 401 */
  status?: number
  retryAfterSeconds?: number
  /** Answer late; then fail with `status`, or answer normally without one. */
  delayMs?: number
  /** Never answer, until the server closes (or 60 s pass). */
  hang?: boolean
  /**
   * Do the work (a code exchange spends its code) and lose the answer, as for a caller that died
   * between sending the call and reading the answer: `hold` it until the server closes (or 60 s
   * pass), or `cut` the connection at once.
   */
  loseAnswer?: 'hold' | 'cut'
  /** Default 1. */
  times?: number
  /** The error's `message`, to play a Wix that echoes what it was sent. */
  message?: string
}

export interface RecordedRequest {
  endpoint: string
  method: string
  headers: Record<string, string | string[] | undefined>
  body: unknown
  /** 0 while the request is still held by a delay or hang. */
  status: number
  at: number
}

export interface IssuedCode { instanceId: string; expiresAt: number; used: boolean }

export interface FakeWix {
  readonly appId: string
  readonly appSecret: string
  /** The public half of the webhook signing key, as the app dashboard shows it (SPKI PEM). */
  readonly publicKeyPem: string
  requests: RecordedRequest[]
  webhooksSent: SentWebhook[]
  /** Sets the app's registered Redirect URL (the installer refuses any other) and webhook URL. */
  register(urls: { redirectUrl?: string; webhookUrl?: string }): void
  readonly redirectUrl: string | undefined
  readonly webhookUrl: string | undefined
  /**
   * A webhook body as Wix sends it: an RS256 JWT whose `data` is the event as a JSON string.
   * `issuedAtMs: null` leaves `iat` out; `expiresAtMs` adds an `exp` (Wix's own carry one: assumed).
   */
  signWebhook(eventType: string, instanceId: string, data?: Record<string, unknown>,
    o?: { issuedAtMs?: number | null; expiresAtMs?: number }): Promise<string>
  /** Signs and posts a webhook to the registered webhook URL; resolves with the app's status. */
  sendWebhook(eventType: string, instanceId: string, data?: Record<string, unknown>): Promise<number>
  /** Installs the app on a site with no redirect flow (a new Wix app): AppInstalled is sent. */
  installApp(o?: { instanceId?: string; originInstanceId?: string }): Promise<{ instanceId: string; status: number }>
  /**
   * Removes the app from a site: its tokens stop working, AppRemoved is sent (unless `webhook` is
   * false: a removal whose webhook never arrived, so only Wix's refusals tell of it).
   */
  uninstallApp(instanceId: string, o?: { webhook?: boolean }): Promise<{ status: number }>
  /** Removes the app from a site without sending AppRemoved (a test posts its own). */
  removeApp(instanceId: string): void
  /** When the installer's Approve sends AppInstalled for the site it issues a code for. */
  appInstalledOnApprove: AppInstalledTiming
  /** Sites the app is installed on (by code or by installApp), newest first. */
  installedInstances(): string[]
  /** Whether the app is on this site: unknown sites count as installed (a restarted sandbox forgets). */
  isInstalled(instanceId: string): boolean
  /** A client-credentials access token for an instance. */
  mintAppToken(instanceId: string): string
  /** The instance a valid access token belongs to; undefined for an invalid or expired one. */
  instanceOfToken(token: string): string | undefined
  issuedCodes: Map<string, IssuedCode>
  failNext(f: FakeWixFailure): void
  /** Forgets recorded requests and queued failures and releases held requests; issued tokens stay valid. */
  reset(): void
  /** Mints a code as the consent page's Approve would. */
  issueCode(instanceId?: string): { code: string; instanceId: string }
  /** How many token exchanges were attempted with this code, successful or not. */
  countExchanges(code: string): number
  /** Signed by the fake's appSecret and unexpired: also true for tokens minted before a restart. */
  isValidAccessToken(token: string): boolean
  /** The instance a refresh token was signed for; undefined when forged, malformed or revoked. */
  verifyRefreshToken(token: string): string | undefined
  /** Later refreshes with this token get a 400, as after an uninstall (until this process ends). */
  revokeRefreshToken(token: string): void
  /** The instanceId a Wix install token maps to, minted on first use. */
  instanceIdFor(installToken: string | undefined, forced?: string): string
  /** The next queued failure for this call, consumed; undefined when there is none. */
  takeFailure(endpoint: FakeEndpoint, grant?: string): FakeWixFailure | undefined
  /** Failures queued and not yet played, with how many times each is left. */
  pendingFailures(): ReadonlyArray<FakeWixFailure & { left: number }>
  /** Waits `ms` (Infinity = until released); every wait ends on `releaseAll()`. */
  hold(ms: number): Promise<'elapsed' | 'released'>
  releaseAll(): void
  mintTokens(instanceId: string, refreshToken?: string): { access_token: string; refresh_token: string }
  /** Refresh tokens this process issued or accepted; the tokens themselves need no memory. */
  refreshTokens: Map<string, { instanceId: string; revoked: boolean }>
  now(): number
  /**
   * Whether the app has Wix's "Manage Your App" permission: without it `GET /apps/v1/instance`
   * answers 403, while token-info (which needs none) still answers. Default true.
   */
  manageYourApp: boolean
  /**
   * How a wrong client secret is refused. Wix documents no status for it (its errors are
   * `{message, details}` with 400, 401 or 403): 401 with `INVALID_CLIENT` by default; any other
   * status answers a plain error that names nothing.
   */
  wrongSecretStatus: 400 | 401 | 403
  /** While true the app's secret counts as wrong everywhere: rotated on Wix's side, not yet in the app. */
  secretRotated: boolean
  /** How a dead refresh token or an instance without the app is refused (default 400). */
  instanceRefusalStatus: 400 | 401 | 403
}
