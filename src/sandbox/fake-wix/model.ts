import { randomUUID } from 'node:crypto'
import { createFailureSwitches } from './failure-switches.ts'
import { createGrants } from './grants.ts'
import type { FakeWix, FakeWixOptions } from './model-types.ts'
import { createSites } from './sites.ts'
import { createWebhookSender } from './webhook-sender.ts'

/** The fake's state and what Wix does with it, without HTTP: the routes and the tests drive it. */
export function createFakeWix(opts: FakeWixOptions): FakeWix {
  const now = opts.now ?? Date.now
  const sites = createSites(now)
  const { clearFailures, ...failures } = createFailureSwitches()
  let urls: { redirectUrl?: string; webhookUrl?: string } = { redirectUrl: opts.redirectUrl, webhookUrl: opts.webhookUrl }

  const wix: FakeWix = {
    appId: opts.appId,
    appSecret: opts.appSecret,
    ...createWebhookSender({ privateKeyPem: opts.webhookPrivateKey, now, webhookUrl: () => urls.webhookUrl }),
    ...createGrants({
      appSecret: opts.appSecret, now, sites,
      codeTtlMs: opts.codeTtlMs ?? 600_000,
      accessTokenTtlMs: opts.accessTokenTtlMs ?? 300_000,
    }),
    ...failures,
    register(u) { urls = { ...urls, ...u } },
    get redirectUrl() { return urls.redirectUrl },
    get webhookUrl() { return urls.webhookUrl },
    async installApp(o = {}) {
      const instanceId = o.instanceId ?? randomUUID()
      sites.markInstalled(instanceId)
      const status = await wix.sendWebhook('AppInstalled', instanceId, { appId: wix.appId, originInstanceId: o.originInstanceId ?? '' })
      return { instanceId, status }
    },
    async uninstallApp(instanceId, o = {}) {
      wix.removeApp(instanceId)
      if (o.webhook === false) return { status: 0 }
      return { status: await wix.sendWebhook('AppRemoved', instanceId, {}) }
    },
    removeApp(instanceId) {
      sites.markRemoved(instanceId)
      for (const [token, t] of wix.refreshTokens) if (t.instanceId === instanceId) wix.revokeRefreshToken(token)
    },
    appInstalledOnApprove: opts.appInstalledOnApprove ?? 'never',
    installedInstances: sites.installed,
    isInstalled: sites.isInstalled,
    instanceIdFor: sites.instanceIdFor,
    requests: [],
    now,
    manageYourApp: true,
    wrongSecretStatus: 401,
    secretRotated: false,
    instanceRefusalStatus: 400,
    reset() {
      wix.requests.length = 0
      clearFailures()
      wix.releaseAll()
    },
    countExchanges(code) {
      return wix.requests.filter((r) => r.endpoint === 'oauth/access' && (r.body as { code?: unknown })?.code === code).length
    },
  }
  return wix
}
