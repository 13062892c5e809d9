# The bot in a container: the exact versions of requirements.lock, a non-root user, the
# database in a volume. Config from the environment (BOT_TOKEN, ...; see
# config.example.toml) or a config.toml mounted at /app/config.toml.
#   docker build -t arta-bot . && docker run -e BOT_TOKEN=... -v arta-data:/data arta-bot
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATABASE_PATH=/data/bot.db \
    METRICS_PORT=9100 \
    METRICS_HOST=0.0.0.0

RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin bot \
    && mkdir /data && chown bot /data

WORKDIR /app
COPY pyproject.toml README.md requirements.lock ./
COPY bot ./bot
# -c: the runtime dependencies at the locked versions, without the dev tools.
RUN pip install -c requirements.lock .

USER bot
VOLUME /data
# /metrics and /healthz in polling mode; webhook mode listens on PORT (8080) instead.
EXPOSE 9100 8080
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "-m", "bot.healthcheck"]
# The bot stops on SIGTERM: unfinished jobs stay saved and resume on the next start.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "bot"]
