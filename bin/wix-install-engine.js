#!/usr/bin/env node
// The command line, compiled (npm pack builds dist/; in a checkout run `npm run build` first,
// or `npm run cli -- …` from source).
await import('../dist/src/cli.js')
