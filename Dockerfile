FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
COPY . .
RUN npm ci && npm prune --omit=dev
EXPOSE 4000
CMD ["node", "bin/tollgate.js", "start", "--config", "/config/config.yaml", "--port", "4000"]
