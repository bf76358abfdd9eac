# minipach: the daemon and the workers run from this one image (the command picks the role).
#   docker build -t minipach .
#   docker run minipach up --config /etc/minipach/minipach.yml
#   docker run -e REDIS_URL=redis://redis:6379 minipach worker --concurrency 2
# Build stage: the compiled JavaScript (dist/) from the TypeScript sources.
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY daemon ./daemon
COPY hooks ./hooks
COPY scripts/compile-validators.mjs ./scripts/
RUN npm ci --ignore-scripts && npm run build

FROM node:20-bookworm-slim

# git-annex and DataLad do the data work; redis-server is the embedded default of `minipach up`
# when no REDIS_URL is given (compose.yaml gives one).
RUN apt-get update \
 && apt-get install -y --no-install-recommends git git-annex datalad redis-server ca-certificates tini \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/minipach
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY bin ./bin
COPY --from=build /src/dist ./dist
COPY specs ./specs
COPY hooks ./hooks
COPY web ./web
RUN ln -s /opt/minipach/bin/minipach.js /usr/local/bin/minipach \
 && git config --system user.name minipach && git config --system user.email minipach@localhost \
 && git config --system --add safe.directory '*'

# State (clones, the worker's cache) lives in volumes, not in the image.
ENV XDG_CACHE_HOME=/var/cache/minipach
VOLUME ["/data", "/var/cache/minipach"]
EXPOSE 8177
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/opt/minipach/bin/minipach.js"]
CMD ["up", "--config", "/etc/minipach/minipach.yml"]
