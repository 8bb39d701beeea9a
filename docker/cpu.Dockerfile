# syntax=docker/dockerfile:1
# The CPU job image: Node 24 LTS, the built project, production dependencies, a non-root user,
# and `geobatch-job` as the entry point. Build from the repository root:
#   docker build -f docker/cpu.Dockerfile -t geobatch-cpu .
# Bases are pinned by version tag and digest; Dependabot (.github/dependabot.yml) bumps both.

FROM node:24.18.0-bookworm-slim@sha256:6f7b03f7c2c8e2e784dcf9295400527b9b1270fd37b7e9a7285cf83b6951452d AS base

# ---- build: compile TypeScript with the dev dependencies, then drop them ----
FROM base AS build
WORKDIR /src
COPY package.json package-lock.json ./
# onnxruntime-node checks ONNX exports on the CPU; skip its optional CUDA download
RUN ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY lib ./lib
COPY jobs ./jobs
COPY scripts/prune-runtime.mjs ./scripts/prune-runtime.mjs
# the image runs only the linux-x64 native binaries: drop the darwin, win32 and arm ones
RUN npm run build && npm prune --omit=dev --no-audit --no-fund && node scripts/prune-runtime.mjs node_modules

# ---- runtime ----
FROM base AS runtime
ENV NODE_ENV=production
# sharp renders the text of the dataset charts and contact sheets with fontconfig: without a
# font every label in those PNGs is blank
RUN apt-get update \
  && apt-get install -y --no-install-recommends fonts-dejavu-core \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# package.json carries "type": "module", without which Node can't load dist/
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --chmod=755 docker/geobatch-job /usr/local/bin/geobatch-job
USER node
ENTRYPOINT ["geobatch-job"]
CMD ["--help"]
