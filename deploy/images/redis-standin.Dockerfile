# LOCAL TEST STAND-IN for the pinned `redis:X.Y-alpine` tag used by compose.yaml, which
# cannot be pulled in CI. Never push it. It holds Debian's redis-server, redis-cli and sh
# (dash: the official image has a shell, and compose.ha.yaml's Sentinels use it to write
# their first config) with the shared libraries `ldd` lists for them (collected into ./rootfs
# by build-images.sh), laid out
# like the official image: binaries in /usr/local/bin, user redis = 999:1000 (the official
# alpine image's ids), WORKDIR and VOLUME /data owned by redis, default command redis-server.
# The official image's entrypoint drops root to the redis user; compose.yaml instead runs the
# service as user 999:1000 directly, so no entrypoint is needed here.
# Build context: ./rootfs/ (binaries, libraries, /etc/passwd, /etc/group), ./data/ (empty).
FROM scratch
COPY rootfs/ /
COPY --chown=999:1000 data/ /data/
ENV PATH=/usr/local/bin:/usr/bin:/bin
WORKDIR /data
VOLUME /data
EXPOSE 6379
LABEL org.scaleout.test-standin="redis"
CMD ["redis-server"]
