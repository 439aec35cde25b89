# One image for the web server and the workers: python:3.11-slim + the pinned requirements.
# torch comes from TORCH_INDEX first (same version as requirements.txt): the CPU wheels by default
# (web, CPU worker); GPU hosts build with --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu124
# (docker-compose.yml does both). An empty TORCH_INDEX takes PyPI's default wheel.
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=webapp.settings \
    MEDIA_ROOT=/data/media \
    CDI_VAR_DIR=/data/var \
    NUMBA_CACHE_DIR=/data/var/numba \
    CDI_CACHE_DIR=/data/var/cache

RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt .
RUN if [ -n "$TORCH_INDEX" ]; then \
        pip install --no-cache-dir --index-url "$TORCH_INDEX" "$(grep '^torch==' requirements.txt)"; \
    fi \
    && pip install --no-cache-dir -r requirements.txt

COPY . .
RUN mkdir -p /data/media /data/var \
    && DJANGO_SECRET_KEY=build python manage.py collectstatic --noinput -v 0 \
    && useradd --create-home --uid 1000 cdi \
    && chown -R cdi /data \
    && chmod -R a+rX /app
USER cdi

EXPOSE 8000
CMD ["gunicorn", "webapp.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "600"]
