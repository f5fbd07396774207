# The streamfunnel worker. The domain core is compiled with mypyc when the
# wheel is built (setup.py), which needs a C compiler: that happens in a build
# stage, so the image that runs carries the wheel and no compiler.
FROM python:3.11-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
# Session state (RocksDB) lives here; it is rebuilt from the changelog topic
# when the container starts without it.
WORKDIR /var/lib/streamfunnel
RUN chown nobody /var/lib/streamfunnel
USER nobody
ENV STREAMFUNNEL_WORKER_STATE_DIR=/var/lib/streamfunnel/state
CMD ["streamfunnel", "worker"]
