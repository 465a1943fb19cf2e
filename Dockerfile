# The service as a container: the same steps test/package-production.test.ts rehearses (it
# reads them from this file and checks it holds no others).

# 1. Build: all dependencies, then TypeScript compiled to dist/.
FROM node:22-bookworm-slim AS build
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN npm run build

# 2. Run: production dependencies only (no tsx, no TypeScript), the compiled service, non-root.
FROM node:22-bookworm-slim
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000 DATA_DIR=/data
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund
COPY --from=build /build/dist ./dist
# Only used without DATABASE_URL: the embedded Postgres lives here (mount a volume to keep it).
RUN install -d -o node -g node /data
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT}/healthz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/src/server.js"]
