import { installationIdOf } from '../../src/crypto/oauth-state.ts'
import type { Service } from './service.ts'
import { createBrowser, type Page } from './browser.ts'

/** Drives a browser through the Wix flow step by step, as a site owner would. */
export function siteOwner(service: Service) {
  const browser = createBrowser()
  let installerUrl: URL | undefined

  return {
    browser,
    /** Step 1–2: Wix opens the App URL (or the app's own platform starts the install). */
    async openAppUrl(token = 'wix-install-token') {
      const page = await browser.get(`${service.url}/wix/app-url?token=${encodeURIComponent(token)}`)
      installerUrl = page.location ? new URL(page.location) : undefined
      return page
    },
    async startFromPlatform() {
      const page = await browser.get(`${service.url}/wix/install`)
      installerUrl = page.location ? new URL(page.location) : undefined
      return page
    },
    get installerUrl() {
      return installerUrl!
    },
    get state() {
      return installerUrl!.searchParams.get('state')!
    },
    /** This install's state cookie, named after its installation (one per begun install). */
    get stateCookie() {
      return `wix_install_state_${installationIdOf(installerUrl!.searchParams.get('state')!)}`
    },
    /** The flow cookie that follows this install once its state is spent. */
    get flowCookie() {
      return `wix_install_flow_${installationIdOf(installerUrl!.searchParams.get('state')!)}`
    },
    /** The installation this browser's flow created, found the way the callback finds it. */
    async installationId(): Promise<string> {
      return installationIdOf(installerUrl!.searchParams.get('state')!)
    },
    /** The consent screen: Approve, and the URL Wix sends the browser back to (not followed). */
    async approve(instanceId?: string): Promise<URL> {
      const approve = new URL(installerUrl!.toString().replace('/installer/install', '/installer/approve'))
      if (instanceId) approve.searchParams.set('instanceId', instanceId)
      const page = await browser.get(approve.toString())
      return new URL(page.location!)
    },
    async cancel(): Promise<URL> {
      const page = await browser.get(installerUrl!.toString().replace('/installer/install', '/installer/cancel'))
      return new URL(page.location!)
    },
    /** Step 3: the browser arrives at our Redirect URL. */
    callback(url: URL | string): Promise<Page> {
      return browser.get(url.toString())
    },
  }
}

/** The newest installation's id, straight from the database. */
export async function latestInstallationId(service: Service): Promise<string> {
  const [row] = await service.app.sql<{ id: string }[]>`select id from wix_engine.workflows order by created_at desc limit 1`
  return row!.id
}
