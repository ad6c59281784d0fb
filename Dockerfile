FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
COPY . .
# `npm ci` builds dist/ and ui/dist (prepare) with the dev dependencies, which are then dropped.
RUN npm ci && npm prune --omit=dev \
  && mkdir -p /data && chown node:node /data
ENV NODE_ENV=production TOLLGATE_DATA_DIR=/data
# The crash journal (and the embedded store, without DATABASE_URL) live in /data: mount a volume.
VOLUME ["/data"]
USER node
EXPOSE 4000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:4000/health/readiness').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "bin/tollgate.js", "start", "--config", "/config/config.yaml", "--port", "4000"]
