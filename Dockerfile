# syntax=docker/dockerfile:1
#
# sauve's image: nothing but statically linked executables, CA certificates,
# the time zone database and a passwd line for uid 65532 (docs/image.md).
#
#   docker build -t sauve:0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 -t sauve:0.1.0 .
#
# The builder runs the same scripts as `make static rootfs` on a developer
# machine: every library and the PostgreSQL client tools (15 from bookworm,
# 18 from whichever suite carries it) are built with musl from Debian's
# source packages, each the newest version that downloads (docs/image.md).
#
# Multi-platform: the builder always runs on the build machine's platform
# and cross-compiles for the target's (TARGETARCH, set by the builder for
# each platform: amd64 or arm64) with Debian's cross gcc, so an arm64 image
# built on amd64 needs no emulation; the final stage holds only static
# executables and data. Without TARGETARCH (an old builder) the build is
# for the builder's own architecture.

FROM --platform=$BUILDPLATFORM debian:bookworm AS builder
ARG TARGETARCH
# SAUVE_STATIC_CACHE=no: the builder's layers are its cache (build.sh's own
# would only copy the prefix into the layer)
ENV DEBIAN_FRONTEND=noninteractive SAUVE_STATIC_DIR=build/static SAUVE_STATIC_CACHE=no
WORKDIR /src

# The libraries and PostgreSQL tools first: this layer (several minutes)
# stays cached while only sauve's sources change. What the next step does
# not need (source trees, apt's lists and downloads) is not kept in it.
COPY scripts/static/ scripts/static/
RUN SAUVE_STATIC_ARCH=$TARGETARCH scripts/static/build.sh --deps-only \
    && rm -rf build/static/src build/static/apt \
    && apt-get clean && rm -rf /var/lib/apt/lists/*

COPY Makefile LICENSE ./
COPY runner/ runner/
RUN SAUVE_STATIC_ARCH=$TARGETARCH scripts/static/build.sh && scripts/static/rootfs.sh


FROM scratch

# Set by the release: --build-arg VERSION=... SOURCE=<repository URL>.
# LICENSES is sauve's own (LICENSE); the notices of everything else the image
# holds are under /usr/share/doc.
ARG VERSION=0.1.0
ARG SOURCE=
ARG LICENSES=MIT

LABEL org.opencontainers.image.title="sauve" \
      org.opencontainers.image.description="Backup runner for Kubernetes: PostgreSQL, Redis and directory trees to S3 with retention, verification and one-command restore; static executables only" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="${LICENSES}" \
      org.opencontainers.image.version="${VERSION}"

COPY --from=builder /src/build/rootfs/ /

USER 65532:65532
ENTRYPOINT ["/usr/local/bin/sauve"]
CMD ["backup"]
