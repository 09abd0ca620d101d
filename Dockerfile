# The smslane image: the exact versions of uv.lock (not the ranges of pyproject.toml), the
# runtime dependencies only, the project installed as a package (not editable).
FROM python:3.11-slim
WORKDIR /app
RUN pip install --no-cache-dir uv==0.13.9
COPY pyproject.toml uv.lock README.md ./
COPY schemas schemas
COPY ingress ingress
COPY streams streams
COPY feeds feeds
COPY store store
COPY sinks sinks
COPY smslane smslane
COPY twilio_sim twilio_sim
# --locked fails the build when uv.lock no longer matches pyproject.toml.
RUN uv sync --locked --no-dev --no-editable --compile-bytecode && rm -rf /root/.cache/uv
ENV PATH=/app/.venv/bin:$PATH \
    SMSLANE_DATA_DIR=/var/lib/smslane
CMD ["smslane", "--help"]
