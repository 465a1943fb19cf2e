import { randomUUID } from 'node:crypto'

/** The sites the app is on: when it was last installed on each and removed from each. */
export function createSites(now: () => number) {
  /** Instance → when the app was last installed there / removed from there. */
  const installedAt = new Map<string, number>()
  const removedAt = new Map<string, number>()
  /** Wix install token → the instance it stands for. */
  const installs = new Map<string, string>()
  /** Install and removal times strictly in the order they happened, even within one millisecond. */
  let lastStamp = -Infinity
  const stamp = () => (lastStamp = Math.max(now(), lastStamp + 1))
  /** Unknown instances count as installed: a sandbox restarted on its DATA_DIR forgets whom it served. */
  const isInstalled = (instanceId: string) =>
    (installedAt.get(instanceId) ?? Infinity) > (removedAt.get(instanceId) ?? -Infinity)
  return {
    isInstalled,
    markInstalled(instanceId: string) {
      installedAt.delete(instanceId)
      installedAt.set(instanceId, stamp())
    },
    markRemoved(instanceId: string) { removedAt.set(instanceId, stamp()) },
    /** When the app was last removed from the site; -Infinity when never. */
    removedAt: (instanceId: string) => removedAt.get(instanceId) ?? -Infinity,
    /** Newest install first. */
    installed: () => [...installedAt.keys()].filter(isInstalled).reverse(),
    /** The instanceId a Wix install token maps to, minted on first use. */
    instanceIdFor(installToken: string | undefined, forced?: string) {
      const known = installToken ? installs.get(installToken) : undefined
      const id = forced ?? known ?? randomUUID()
      if (installToken) installs.set(installToken, id)
      return id
    },
  }
}

export type Sites = ReturnType<typeof createSites>
