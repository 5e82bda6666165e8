# styletransfer server image. The same pinned dependencies as pyproject.toml; torch 2.14.1 from PyPI is the CUDA
# build (it also runs on CPU). For a smaller CPU-only image, install torch/torchvision from the PyTorch CPU index.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

RUN useradd --create-home --uid 10001 styletransfer

COPY pyproject.toml README.md ./
COPY model ./model
COPY server ./server
COPY clients ./clients
COPY protos ./protos
RUN pip install .

# Weights: mounted at /app/weights at run time, or fetched (and verified) at build time with FETCH_WEIGHTS=1.
ARG FETCH_WEIGHTS=0
RUN mkdir -p /app/weights /data && \
    if [ "$FETCH_WEIGHTS" = "1" ]; then python -m model fetch --dest /app/weights --quiet; fi && \
    chown -R styletransfer /app/weights /data

USER styletransfer
ENV STYLETRANSFER_HTTP_PORT=8080 \
    STYLETRANSFER_DATA_DIR=/data \
    STYLETRANSFER_VGG=/app/weights/vgg_normalised.pth \
    STYLETRANSFER_DECODER=/app/weights/decoder.pth
VOLUME ["/data"]
EXPOSE 50051 8080 9090

# Health: the standard grpc.health.v1.Health service on 50051 (Kubernetes native gRPC probes, grpc_health_probe).
# Docker's own probe asks it too (server/healthcheck.py): unhealthy while loading past the start period, or draining.
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["python", "-m", "server.healthcheck", "--timeout", "5"]
ENTRYPOINT ["styletransfer-server"]
