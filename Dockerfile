# The API image. Migrations run when the container starts (`snp serve` migrates first, under an
# advisory lock, so several replicas may start together).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    SNP_ENV=production

WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
# A plain install: the migrations ship inside the package.
RUN pip install . && useradd --system --home-dir /app snp && chown -R snp /app
USER snp

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz').status != 200)"
CMD ["snp", "serve", "--host", "0.0.0.0", "--port", "8000"]
