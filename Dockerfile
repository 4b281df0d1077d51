# The Celltrail server image (backend and bridge). Build: docker build -t celltrail .
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends libzbar0 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /var/lib/celltrail celltrail

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY backend ./backend
COPY celltrail_shared ./celltrail_shared
COPY firmware_bridge ./firmware_bridge
COPY labels ./labels
COPY scanner ./scanner
RUN pip install --no-cache-dir -c constraints.txt ".[server]"

USER celltrail
EXPOSE 8000
CMD ["celltrail", "serve", "--host", "0.0.0.0"]
