# The worker and the API (one image, two commands; see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY . .
RUN pip install . \
    && useradd --create-home --uid 10001 incident
USER incident

ENV API_HOST=0.0.0.0 \
    API_PORT=8000 \
    LOG_FORMAT=json
EXPOSE 8000
CMD ["python", "worker.py"]
