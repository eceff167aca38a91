# The project on Ray's image of the pinned Ray and Python, in two flavours. Build from the
# repository root (this file's .dockerignore keeps .venv, runs and .git out of the context):
#   docker build -f cluster/images/latentsci.Dockerfile --build-arg FLAVOUR=cpu \
#       -t YOUR_REGISTRY/latentsci:2.60.0-py311-cpu .
#   docker build -f cluster/images/latentsci.Dockerfile --build-arg FLAVOUR=gpu \
#       -t YOUR_REGISTRY/latentsci:2.60.0-py311-gpu .
# cpu: torch's CPU wheel, as the Makefile installs it. gpu: a CUDA build of the same torch
# version (pick TORCH_CUDA to match your nodes' driver: cu128 needs driver 570 or newer).
ARG RAY_VERSION=2.60.0
ARG PYTHON=py311
ARG FLAVOUR=cpu
FROM rayproject/ray:${RAY_VERSION}-${PYTHON}-${FLAVOUR}
ARG FLAVOUR
ARG TORCH_CUDA=cu128

# Ray's image runs as user ray: give it /app, where the install writes its build files.
USER root
RUN mkdir -p /app && chown ray:users /app
USER ray
WORKDIR /app
COPY --chown=ray:users constraints.txt pyproject.toml README.md ./
# torch first, at the version constraints.txt pins, from the index of the flavour's build; the
# project install below keeps it, since every pip call runs under the same constraints.
RUN if [ "$FLAVOUR" = "gpu" ]; then build="$TORCH_CUDA"; else build="cpu"; fi \
    && pip install --no-cache-dir -c constraints.txt \
        --index-url "https://download.pytorch.org/whl/$build" torch
COPY --chown=ray:users latentsci latentsci
COPY --chown=ray:users workflows workflows
RUN pip install --no-cache-dir -c constraints.txt . \
    && python -c "import latentsci, workflows.molecules, torch; print('torch', torch.__version__)"
# Pipeline files name their inputs relative to themselves (../data/...): keep both beside.
COPY --chown=ray:users pipelines pipelines
COPY --chown=ray:users data data
