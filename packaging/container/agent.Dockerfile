# syntax=docker/dockerfile:1
# The NovaCron Edge agent image: the compiled binary on a distroless base (glibc, no shell, no package manager),
# running as the base's non-root user (65532). The build context is dist/, after `npm run build`:
#
#   docker buildx build --platform linux/amd64,linux/arm64 -f packaging/container/agent.Dockerfile \
#     -t REGISTRY/novacron-agent:VERSION dist/
#
# BASE may name any glibc image with a user 65532, e.g. a mirror of the distroless base.
ARG BASE=gcr.io/distroless/base-nossl-debian12:nonroot
# Set by BuildKit from --platform (amd64 or arm64); other builders: --build-arg TARGETARCH=amd64.
ARG TARGETARCH

# Bun names the architectures x64 and arm64, Docker amd64 and arm64: one stage per platform.
FROM scratch AS binary-amd64
COPY novacron-agent-linux-x64 /novacron-agent
FROM scratch AS binary-arm64
COPY novacron-agent-linux-arm64 /novacron-agent
FROM binary-${TARGETARCH} AS binary

FROM ${BASE}
COPY --from=binary /novacron-agent /usr/bin/novacron-agent
USER 65532:65532
# Created as the user above, so that a volume mounted here starts out writable by it.
WORKDIR /var/lib/novacron
ENV NOVACRON_DATA=/var/lib/novacron \
    NOVACRON_API=0.0.0.0:8080
VOLUME /var/lib/novacron
EXPOSE 8080
ENTRYPOINT ["/usr/bin/novacron-agent"]
CMD ["run"]
