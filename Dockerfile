# Claqueta: the same app as `python app.py`, in a slim image that runs as a non-root user.
#   docker build -t claqueta:1.0.0 .
#   az acr build --registry <registry> --image claqueta:1.0.0 .      (no local Docker needed; see deploy/README.md)
# The state lives in SharePoint (CLAQUETA_BACKEND=graph): nothing written inside the container matters, so
# several instances can run side by side and any of them can be replaced at any time.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Every runtime dependency ships a manylinux wheel: no compiler, no apt layer.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

RUN groupadd --system --gid 10001 claqueta \
 && useradd --system --uid 10001 --gid claqueta --no-create-home --shell /usr/sbin/nologin claqueta \
 && mkdir -p /var/lib/claqueta \
 && chown claqueta:claqueta /var/lib/claqueta

# Code owned by root and read-only for the app user: a compromised process cannot rewrite itself.
COPY . .

# Secure by default: without MicrosoftAppId the app refuses to start instead of accepting anonymous calls.
ENV CLAQUETA_LOCAL_MODE=false \
    CLAQUETA_DATA_DIR=/var/lib/claqueta \
    PORT=3978

USER 10001:10001
EXPOSE 3978

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3978'), timeout=4)"]

CMD ["python", "app.py"]
