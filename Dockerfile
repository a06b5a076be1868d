# syntax=docker/dockerfile:1
#
# One image per Meridian service, built from the whole repository:
#
#   docker build --build-arg SERVICE=order-service -t meridian/order-service .
#
# docker-compose.yml builds all three this way, plus the `runtime` target (signing-key
# tool) and the `demo` target. The image holds compiled JavaScript, the service's
# migrations and production dependencies only; keys and passwords come from the
# environment at run time, never from the image.

# The Node LTS the images run (Node 24 "Krypton", supported until April 2028).
ARG NODE_VERSION=24

# ---- manifests: every workspace's package.json, and the lockfile ----
# Copied before the sources, so the npm ci layers below are rebuilt only when
# dependencies change. (A new workspace under apps/ or libs/ adds a line here.)
FROM node:${NODE_VERSION}-bookworm-slim AS manifests
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
COPY libs/platform/package.json libs/platform/
COPY libs/proto/package.json libs/proto/
COPY libs/testkit/package.json libs/testkit/
COPY apps/user-service/package.json apps/user-service/
COPY apps/order-service/package.json apps/order-service/
COPY apps/payment-service/package.json apps/payment-service/
COPY apps/demo/package.json apps/demo/

# ---- build: every dependency, then Nx compiles what the images need ----
FROM manifests AS build
ENV NX_DAEMON=false NX_NO_CLOUD=true
# --ignore-scripts: nothing Meridian uses needs an install script, and Prisma's would
# download engines that its JavaScript engine (engine: "js") never loads.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN npx nx run-many -t build -p user-service order-service payment-service demo

# ---- production-dependencies: the same lockfile, without devDependencies ----
FROM manifests AS production-dependencies
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# ---- runtime: what every Meridian image shares (the shared libs, compiled) ----
# Also an image of its own: docker-compose.yml's `keys` service runs its key tool.
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production HOST=0.0.0.0
WORKDIR /app
COPY --from=production-dependencies /app/package.json ./
COPY --from=production-dependencies /app/node_modules ./node_modules
COPY --from=build /app/libs/proto/package.json libs/proto/
COPY --from=build /app/libs/proto/dist libs/proto/dist
COPY --from=build /app/libs/platform/package.json libs/platform/
COPY --from=build /app/libs/platform/dist libs/platform/dist
# Signing keys live on a volume mounted here; a new named volume takes the owner of
# this directory, so the non-root user can write its keys.
RUN mkdir -p /var/lib/meridian/keys && chown node:node /var/lib/meridian/keys
USER node

# ---- demo: the narrated scenario against a running system ----
FROM runtime AS demo
COPY --from=build /app/apps/demo/package.json apps/demo/
COPY --from=build /app/apps/demo/dist apps/demo/dist
WORKDIR /app/apps/demo
CMD ["node", "dist/against.js"]

# ---- service (the default target): one of the three services ----
FROM runtime AS service
ARG SERVICE
COPY --from=build /app/apps/${SERVICE}/package.json apps/${SERVICE}/
COPY --from=build /app/apps/${SERVICE}/dist apps/${SERVICE}/dist
# The service applies these itself at start-up, before it listens.
COPY --from=build /app/apps/${SERVICE}/prisma/migrations apps/${SERVICE}/prisma/migrations
WORKDIR /app/apps/${SERVICE}
CMD ["node", "dist/main.js"]
