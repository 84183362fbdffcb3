# Builds the three binaries (the two services and dynamoctl); the runtime image holds only them.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin dynamo-consumer --bin dynamo-server --bin dynamoctl

FROM debian:bookworm-slim
# The user owns its home, and the filesystem storage backend's directory
# (STORAGE_DIR, default ./data/images from the working directory) exists in
# it: a volume mounted on /home/dynamo/data starts out owned by dynamo too.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /home/dynamo dynamo \
    && install -d -o dynamo -g dynamo /home/dynamo/data/images
COPY --from=build /src/target/release/dynamo-consumer /src/target/release/dynamo-server /src/target/release/dynamoctl /usr/local/bin/
USER dynamo
WORKDIR /home/dynamo
# glibc keeps the image step's multi-megabyte buffers after a request; mapping
# each afresh halves idle memory (51 -> 27 MB) for some CPU per image, which
# is cheap beside seconds of upstream generation (BENCHMARKS.md).
ENV MALLOC_MMAP_THRESHOLD_=131072
CMD ["dynamo-consumer"]
