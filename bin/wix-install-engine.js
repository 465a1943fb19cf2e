#!/usr/bin/env node
// The command line, run from TypeScript source through tsx (a runtime dependency).
import { register } from 'tsx/esm/api'

register()
await import('../src/cli.ts')
