# Builds both binaries; the runtime image holds only them.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin dynamo-consumer --bin dynamo-server --bin dynamoctl

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 dynamo
COPY --from=build /src/target/release/dynamo-consumer /src/target/release/dynamo-server /src/target/release/dynamoctl /usr/local/bin/
USER dynamo
WORKDIR /home/dynamo
CMD ["dynamo-consumer"]
