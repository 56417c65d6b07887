# The operator image: a static binary on a distroless base, running as non-root, with the
# gateway's browser page (gateway/build.sh: noVNC's client, MPL-2.0, bundled) beside it.
# Build: docker build -t hygie:dev .   (the release workflow builds and pushes it)
#
# The bases are build arguments, so that a machine with no registry can build the image from
# a binary it built itself (tests/node/images.sh does):
#   --build-arg BINARY=prebuilt --build-arg RUNTIME_IMAGE=scratch
# takes target/x86_64-unknown-linux-musl/release/hygie and target/gateway-web instead of
# compiling in the rust and node images.
ARG BUILD_IMAGE=docker.io/library/rust:1.95-bookworm
ARG PAGE_IMAGE=docker.io/library/node:22-bookworm-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot
ARG BINARY=build-all

FROM ${BUILD_IMAGE} AS build
RUN apt-get update && apt-get install -y --no-install-recommends musl-tools \
    && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p hygie --target x86_64-unknown-linux-musl \
    && cp target/x86_64-unknown-linux-musl/release/hygie /hygie

FROM ${PAGE_IMAGE} AS page
WORKDIR /src
COPY gateway/ gateway/
RUN bash gateway/build.sh /page

FROM scratch AS build-all
COPY --from=build /hygie /hygie
COPY --from=page /page /page

FROM scratch AS prebuilt
COPY target/x86_64-unknown-linux-musl/release/hygie /hygie
COPY target/gateway-web /page

FROM ${BINARY} AS binary

FROM ${RUNTIME_IMAGE}
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="hygie" \
      org.opencontainers.image.description="Kubernetes operator for sovereign health-data platforms on HDS-certified French clouds" \
      org.opencontainers.image.source="https://github.com/hygie-io/hygie" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=binary /hygie /hygie
COPY --from=binary /page /usr/share/hygie/gateway
USER 65532:65532
ENTRYPOINT ["/hygie"]
CMD ["run"]
