# One image for every Comptoir process; the command chooses which (docker-compose.yml, deploy/k8s).
#   docker build -t comptoir .
#   docker run comptoir python -m comptoir_tickets      (a service; likewise comptoir_auth, comptoir_notifier, ...)
#   docker run comptoir python -m comptoir_gateway      (the web interface and API, port 8000)
#   docker run comptoir comptoir migrate                (migrations and broker topology, before the others)
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml ./
COPY common ./common
COPY gateway ./gateway
COPY services ./services
COPY tools ./tools
RUN python -m venv /opt/comptoir \
    && /opt/comptoir/bin/pip install --upgrade pip wheel \
    && /opt/comptoir/bin/pip install .

FROM python:3.11-slim
ENV PATH=/opt/comptoir/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    COMPTOIR_DATA_DIR=/data \
    COMPTOIR_LOG_FORMAT=json \
    GATEWAY_HOST=0.0.0.0 \
    COMPTOIR_PORT=8000
RUN useradd --system --uid 10001 --home-dir /data --create-home comptoir \
    && mkdir -p /data/blobs && chown -R comptoir /data
COPY --from=build /opt/comptoir /opt/comptoir
COPY examples /opt/comptoir/examples
USER comptoir
WORKDIR /data
EXPOSE 8000 9100
# Services answer on <SERVICE>_HEALTH_PORT (9100 in docker-compose and Kubernetes), the gateway on 8000.
CMD ["python", "-m", "comptoir_gateway"]
