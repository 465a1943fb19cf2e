// `node --import=./scripts/ts-loader.mjs file.ts`: runs a TypeScript file (see ts-hooks.mjs).
import { register } from 'node:module'

register('./ts-hooks.mjs', import.meta.url)
