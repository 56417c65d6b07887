# The operator image: a static binary on a distroless base, running as non-root.
# Build: docker build -t hygie:dev .   (the release workflow builds and pushes it)
FROM docker.io/library/rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends musl-tools \
    && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p hygie --target x86_64-unknown-linux-musl \
    && cp target/x86_64-unknown-linux-musl/release/hygie /hygie

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="hygie" \
      org.opencontainers.image.description="Kubernetes operator for sovereign health-data platforms on HDS-certified French clouds" \
      org.opencontainers.image.source="https://github.com/hygie-io/hygie" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=build /hygie /hygie
USER 65532:65532
ENTRYPOINT ["/hygie"]
CMD ["run"]
