import postgres from 'postgres'

/** Postgres error codes we act on. */
export const PG = {
  /** unique_violation */
  UNIQUE_VIOLATION: '23505',
} as const

export interface ConnectOptions {
  /** PGlite serves one session: the embedded database needs exactly one connection. */
  max?: number
}

export function connect(url: string, opts: ConnectOptions = {}) {
  return postgres(url, {
    max: opts.max ?? 10,
    onnotice: () => {},
    connection: { application_name: 'wix-install-engine' },
  })
}
