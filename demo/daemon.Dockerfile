# The otel-ai daemon image used by docker-compose.yml (build context: the repository root).
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY otel_ai ./otel_ai
RUN pip install . && useradd --system --home /data otel-ai && mkdir -p /data && chown otel-ai /data

USER otel-ai
WORKDIR /data
# Inside a container, listen on every interface (the defaults are loopback-only).
ENV OTEL_AI_OTLP_GRPC=0.0.0.0:4317 OTEL_AI_OTLP_HTTP=0.0.0.0:4318 OTEL_AI_API=0.0.0.0:8700
EXPOSE 4317 4318 8700
ENTRYPOINT ["otel-ai"]
CMD ["serve"]
