# Builds both binaries; the compose file runs the API and the workers from this image.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p arian-api -p arian-worker

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/arian-api /src/target/release/arian-worker /usr/local/bin/
USER nobody
EXPOSE 8080
CMD ["arian-api", "serve"]
