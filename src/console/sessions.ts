import { createHash, randomBytes } from 'node:crypto'
import type { Sql } from 'postgres'

/** How long a console sign-in lasts; signing in again starts a new one. */
export const SESSION_TTL_MS = 8 * 60 * 60_000

const hash = (id: string) => createHash('sha256').update(id).digest('hex')

export interface ConsoleSession {
  /** Sent back in every state-changing form; compared with the row's in constant time. */
  csrf: string
  expiresAt: Date
}

/** Server-side console sessions: the cookie holds a random id, the table its hash. */
export function createSessionStore(sql: Sql, now: () => Date) {
  return {
    async create(): Promise<{ id: string } & ConsoleSession> {
      const id = randomBytes(32).toString('base64url')
      const csrf = randomBytes(32).toString('base64url')
      const expiresAt = new Date(now().getTime() + SESSION_TTL_MS)
      // Sign-ins are rare: each one also clears the sessions that have run out.
      await sql`delete from wix_install.console_sessions where expires_at <= ${now()}`
      await sql`insert into wix_install.console_sessions (id_hash, csrf, expires_at) values (${hash(id)}, ${csrf}, ${expiresAt})`
      return { id, csrf, expiresAt }
    },
    async find(id: string): Promise<ConsoleSession | undefined> {
      const [row] = await sql<{ csrf: string; expires_at: Date }[]>`
        select csrf, expires_at from wix_install.console_sessions where id_hash = ${hash(id)} and expires_at > ${now()}`
      return row && { csrf: row.csrf, expiresAt: row.expires_at }
    },
    async end(id: string) {
      await sql`delete from wix_install.console_sessions where id_hash = ${hash(id)}`
    },
  }
}

export type SessionStore = ReturnType<typeof createSessionStore>
