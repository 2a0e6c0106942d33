# The three scaleout images, built FROM scratch around the static musl binary, matching
# what flake.nix builds with dockerTools: binary at /bin/scaleout, user 65534, no shell,
# an image healthcheck running `scaleout healthcheck`.
# Build context (prepared by deploy/images/build.sh): ./scaleout (static binary)
# and ./www/ (frontend/dist, used by the web image only).
#   docker build --target app    -t scaleout-app:latest    -f scaleout.Dockerfile CONTEXT
#   docker build --target worker -t scaleout-worker:latest -f scaleout.Dockerfile CONTEXT
#   docker build --target web    -t scaleout-web:latest    -f scaleout.Dockerfile CONTEXT
FROM scratch AS base
COPY scaleout /bin/scaleout
USER 65534:65534
WORKDIR /
ENV REDIS_URL=redis://redis:6379 \
    LISTEN_ADDR=0.0.0.0:8080 \
    LOG_FORMAT=json \
    RUST_LOG=info,ntex=warn \
    DRAIN_SECS=5 \
    MIMALLOC_ALLOW_THP=0
# build-images.sh adds org.opencontainers.image.{description,version,licenses} from Cargo.toml
LABEL org.scaleout.built-by="tests/compose"

FROM base AS app
LABEL org.opencontainers.image.title="scaleout-app"
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 CMD ["/bin/scaleout", "healthcheck"]
ENTRYPOINT ["/bin/scaleout", "app"]

FROM base AS worker
LABEL org.opencontainers.image.title="scaleout-worker"
ENTRYPOINT ["/bin/scaleout", "worker"]

FROM base AS web
LABEL org.opencontainers.image.title="scaleout-web"
COPY www/ /srv/www/
ENV WEB_ROOT=/srv/www
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 CMD ["/bin/scaleout", "healthcheck"]
ENTRYPOINT ["/bin/scaleout", "web"]
