FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY ingress ingress
COPY streams streams
COPY feeds feeds
COPY store store
COPY sinks sinks
COPY smslane smslane
COPY twilio_sim twilio_sim
RUN pip install --no-cache-dir .
ENV SMSLANE_DATA_DIR=/var/lib/smslane
CMD ["smslane", "--help"]
