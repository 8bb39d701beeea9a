# syntax=docker/dockerfile:1
# The GPU job image: a CUDA PyTorch base, the same Node 24 and built project as the CPU image,
# the Python trainer of jobs/train/ and the default pretrained weights, a non-root user, and
# `geobatch-job` as the entry point. Build from the repository root:
#   docker build -f docker/gpu.Dockerfile -t geobatch-gpu .
# CUDA 12.6 runs on the NVIDIA driver of the ECS_AL2023_NVIDIA AMI (g5, g6, p4d, p5).
# Bases are pinned by version tag and digest; Dependabot (.github/dependabot.yml) bumps both.

FROM node:24.18.0-bookworm-slim@sha256:6f7b03f7c2c8e2e784dcf9295400527b9b1270fd37b7e9a7285cf83b6951452d AS base

# ---- build: the same build as the CPU image ----
FROM base AS build
WORKDIR /src
COPY package.json package-lock.json ./
# predict runs ONNX Runtime's CUDA execution provider here: install onnxruntime-node WITH its
# CUDA 12 libraries (downloaded by its install script; the CPU image skips them), and fail the
# build if they did not come
RUN ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci --no-audit --no-fund \
  && test -f node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so
COPY tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY lib ./lib
COPY jobs ./jobs
COPY scripts/prune-runtime.mjs ./scripts/prune-runtime.mjs
# the image runs only the linux-x64 native binaries: drop the darwin, win32 and arm ones
RUN npm run build && npm prune --omit=dev --no-audit --no-fund && node scripts/prune-runtime.mjs node_modules
# The trainer's Python package (jobs/train/ without the TypeScript harness, which is in dist/),
# staged at a path that exists even before jobs/train/ does.
RUN mkdir -p /trainer \
  && if [ -d jobs/train ]; then cp -R jobs/train/. /trainer/ && find /trainer -name '*.ts' -delete; fi

# ---- weights: the pretrained weights the trainer loads, traced from its own model list ----
# (the same base as the runtime, so the list is that of the image's torchvision)
FROM pytorch/pytorch:2.13.0-cuda12.6-cudnn9-runtime@sha256:6acf597eeb8e376a96580dde4952f37cc017fef732bb40bfc73f28f25e3f64b4 AS weights
COPY --from=build /trainer /trainer
RUN PYTHONPATH=/trainer python -m geobatch_trainer.weights > /pretrained-weights.txt

# ---- runtime ----
FROM pytorch/pytorch:2.13.0-cuda12.6-cudnn9-runtime@sha256:6acf597eeb8e376a96580dde4952f37cc017fef732bb40bfc73f28f25e3f64b4 AS runtime
ENV NODE_ENV=production \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TORCH_HOME=/opt/torch \
    GEOBATCH_TRAINER_DIR=/app/jobs/train \
    PYTHONPATH=/app/jobs/train \
    GEOBATCH_DEVICE=cuda
# fonts for the text sharp renders into the training curves and dataset pictures
RUN apt-get update \
  && apt-get install -y --no-install-recommends fonts-dejavu-core \
  && rm -rf /var/lib/apt/lists/*
# ONNX Runtime's CUDA provider loads the CUDA 12 and cuDNN 9 libraries by name: register the
# ones PyTorch's wheels ship (site-packages/nvidia/*/lib) with the dynamic linker
RUN python -c "import glob, os, site; print('\\n'.join(sorted(d for p in site.getsitepackages() for d in glob.glob(os.path.join(p, 'nvidia', '*', 'lib')))))" \
    > /etc/ld.so.conf.d/geobatch-cuda.conf \
  && ldconfig
RUN groupadd --gid 10001 geobatch \
  && useradd --uid 10001 --gid geobatch --create-home --shell /usr/sbin/nologin geobatch

# The default pretrained weights of every model, baked in so Batch jobs need no internet; kept
# above the project files, and keyed on the list's content, so a code change that leaves the
# list alone does not download them again.
COPY docker/bake-weights.py /opt/geobatch/bake-weights.py
COPY --from=weights /pretrained-weights.txt /opt/geobatch/pretrained-weights.txt
RUN xargs python /opt/geobatch/bake-weights.py < /opt/geobatch/pretrained-weights.txt \
  && chmod -R a+rX "${TORCH_HOME}"

COPY --from=base /usr/local/bin/node /usr/local/bin/node
WORKDIR /app
COPY --from=build /trainer ./jobs/train
RUN if [ -f jobs/train/requirements.txt ]; then pip install --no-cache-dir -r jobs/train/requirements.txt; fi
# package.json carries "type": "module", without which Node can't load dist/
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --chmod=755 docker/geobatch-job /usr/local/bin/geobatch-job
USER geobatch
ENTRYPOINT ["geobatch-job"]
CMD ["--help"]
