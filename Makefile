# scaleout: every command a user or contributor needs. `make help` lists them.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
N ?= 3
URL ?= http://localhost:8080/api/
MUSL := $(shell uname -m)-unknown-linux-musl
# cargo's output directory: CARGO_TARGET_DIR when set (tests/quickstart points its clean
# clone at a copy of this one's), else ./target.
TARGET_DIR := $(abspath $(or $(CARGO_TARGET_DIR),target))
BIN := $(TARGET_DIR)/$(MUSL)/release/scaleout
export SCALEOUT_BIN := $(BIN)
# Nix with flakes on, whatever the user's nix.conf says.
NIX := nix --extra-experimental-features 'nix-command flakes'

.PHONY: help build images up scale down clean logs ps load local local-scale release frontend \
        deps check test test-rust test-frontend test-docs test-traefik test-e2e test-ha test-browser test-compose test-nix test-quickstart \
        bench swarm-init swarm-secrets swarm-leave swarm-deploy swarm-scale swarm-update swarm-rollback \
        swarm-status swarm-rm test-swarm test-swarm-multi test-k8s

help: ## this list
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

# ---- Docker Compose: the stack as users run it
build: ## build the three images with Nix (>= 2.18) and load them into Docker
	$(NIX) build .#image --print-build-logs
	docker load < result

images: ## the same images without Nix, from the musl build (installs its tools)
	.ci/deps images
	@$(MAKE) --no-print-directory release frontend
	deploy/images/build.sh scaleout

up: ## start the stack with N (3) replicas and wait until healthy; makes the Redis passwords (.secrets/) and images if missing
	@why=$$(command -v docker >/dev/null && docker version -f '{{.Server.Version}}' 2>&1 >/dev/null) || \
	  { echo "make up: no Docker engine ($${why:-no docker command}); run the same stack without Docker: make local" >&2; exit 1; }
	@docker compose version >/dev/null 2>&1 || deploy/docker/compose-plugin.sh
	@if docker image inspect scaleout-app:latest scaleout-worker:latest scaleout-web:latest >/dev/null 2>&1; then \
	  echo "make up: using the existing scaleout-*:latest images (make images or make build rebuilds them)"; \
	elif why=$$(.ci/nix-usable); then \
	  echo "make up: building the images with Nix: $$why (make build)"; \
	  $(MAKE) --no-print-directory build || { echo "make up: the Nix build failed; build the same images without Nix with: make images, then: make up" >&2; exit 1; }; \
	else \
	  echo "make up: building the images without Nix ($$why): make images"; \
	  $(MAKE) --no-print-directory images; \
	fi
	@deploy/redis/secrets.sh .secrets 0644
	docker compose up -d --scale app=$(N) --wait
	@echo "scaleout is up: http://localhost:8080/  (Traefik dashboard: http://127.0.0.1:8081/)"

scale: ## scale the app to N replicas, live
	docker compose up -d --scale app=$(N) --no-recreate --wait

down: ## stop the stack (keeps the Redis volume)
	docker compose down

clean: ## stop the stack and remove the Redis volume
	docker compose down -v

logs: ## follow every service's logs
	docker compose logs -f

ps: ## list the stack's containers and their health
	docker compose ps

load: release ## 10 s of load through Traefik, sessions checked (URL=...)
	$(BIN) load --url $(URL) --concurrency 32 --duration 10s

# ---- Docker Swarm: stack.yaml on one or many machines (docs/swarm.md)
DOCKER ?= docker
STACK ?= scaleout
TAG ?= latest
SERVICES ?= app worker web
SERVICE ?= app
# `never`: the images are local (make images / build, moved to each node); set to `always`
# when they come from a registry.
RESOLVE_IMAGE ?= never
# Swarm configs are immutable: stack.yaml names Traefik's after the content of its files.
TRAEFIK_CONFIG_HASH = $(shell cat traefik/traefik-swarm.yml traefik/dynamic/*.yml | sha256sum | cut -c1-12)
REDIS_CONFIG_HASH = $(shell cat deploy/redis/entrypoint.sh deploy/redis/users.acl | sha256sum | cut -c1-12)
# The Redis passwords and TLS files of the Swarm stack: made once by swarm-init, kept here
# (git-ignored; Swarm never shows a secret's value again), shipped by swarm-deploy as Swarm
# secrets named after their content.
SWARM_SECRETS ?= .secrets/swarm
SWARM_SECRET_FILES = $(foreach u,admin app worker replication sentinel,redis-$(u)-password) \
                     redis-tls-ca.crt redis-tls.crt redis-tls.key
SWARM_SECRETS_HASH = $(shell cd $(SWARM_SECRETS) && cat $(SWARM_SECRET_FILES) | sha256sum | cut -c1-12)

swarm-init: ## make this engine a Swarm manager, labelled as the home of Redis's volume; then swarm-secrets
	$(DOCKER) swarm init $(SWARM_INIT_FLAGS)
	$(DOCKER) node update --label-add scaleout.redis=true "$$($(DOCKER) info -f '{{.Swarm.NodeID}}')"
	@$(MAKE) --no-print-directory swarm-secrets

swarm-secrets: ## the Swarm stack's Redis passwords and TLS files in SWARM_SECRETS (.secrets/swarm), those missing
	@deploy/redis/secrets.sh $(SWARM_SECRETS)
	@deploy/redis/certs.sh $(SWARM_SECRETS) redis
	@echo "These files are the only readable copy (Swarm never shows a secret again); make swarm-deploy ships them."

swarm-leave: ## leave the swarm (the last manager takes the swarm with it)
	$(DOCKER) swarm leave --force

swarm-deploy: ## deploy or update stack.yaml (TAG=latest); the images must be on every node
	@cd $(SWARM_SECRETS) 2>/dev/null && ls $(SWARM_SECRET_FILES) >/dev/null 2>&1 || \
	  { echo "swarm-deploy: no Redis secrets in $(SWARM_SECRETS): make swarm-init made them there (copy that directory here, or set SWARM_SECRETS)" >&2; exit 1; }
	SCALEOUT_TRAEFIK_CONFIG=$(TRAEFIK_CONFIG_HASH) SCALEOUT_REDIS_CONFIG=$(REDIS_CONFIG_HASH) \
	  SCALEOUT_SECRETS_DIR=$(abspath $(SWARM_SECRETS)) SCALEOUT_SECRETS=$(SWARM_SECRETS_HASH) SCALEOUT_TAG=$(TAG) \
	  $(DOCKER) stack deploy --prune --resolve-image $(RESOLVE_IMAGE) -c stack.yaml $(STACK)

swarm-scale: ## scale the Swarm app to N replicas, live; returns once they run
	$(DOCKER) service scale --detach=false $(STACK)_app=$(N)

swarm-update: ## rolling update of SERVICES (app worker web) to image tag TAG; waits
	for s in $(SERVICES); do \
	  $(DOCKER) service update --detach=false --no-resolve-image --image scaleout-$$s:$(TAG) $(STACK)_$$s; \
	done

swarm-rollback: ## roll SERVICE (app) back to its previous definition
	$(DOCKER) service rollback --detach=false $(STACK)_$(SERVICE)

swarm-status: ## nodes, services and running tasks of the stack
	$(DOCKER) node ls
	$(DOCKER) stack services $(STACK)
	$(DOCKER) stack ps $(STACK) --filter desired-state=running

swarm-rm: ## remove the stack (the Redis volume stays on its node)
	$(DOCKER) stack rm $(STACK)

# ---- Host mode: the same stack on loopback, no Docker
local: ## the same stack on loopback, no Docker (installs its tools; Ctrl-C stops); HA=1: Redis with 2 replicas, 3 Sentinels
	.ci/deps local
	@$(MAKE) --no-print-directory release frontend
	deploy/local.sh up $(N)

local-scale: ## scale a running host-mode stack to N replicas
	deploy/local.sh scale $(N)

# ---- Builds
release: ## the static (musl) release binary
	@echo "release: the static musl binary (fat LTO: minutes on 2 cores when it must be rebuilt)"
	cargo build --release --target $(MUSL)

frontend: ## the dashboard: frontend/dist
	cd frontend && npm ci --no-audit --no-fund && npm run build

# ---- Tests: `make test` is what CI runs
check: test-docs test-traefik ## the fast contributor loop: doc links, Traefik's configs, fmt, clippy, cargo test, the dashboard's lint, types and unit tests (needs Rust, Node, redis-server)
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	cargo test --all-targets
	cd frontend && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund; } && \
	  npm run lint && npm run type-check && npm run test:unit

deps: ## install what the tests need (Debian, as root); see .ci/deps
	.ci/deps

test: deps test-rust test-frontend test-docs test-traefik test-e2e test-ha test-browser test-compose test-quickstart test-swarm test-swarm-multi test-k8s test-nix ## everything

test-rust: ## unit and black-box tests against real Redis
	cargo test --all-targets

test-frontend: ## ESLint and Prettier, vue-tsc, vitest, and the production build
	cd frontend && npm ci --no-audit --no-fund && npm run lint && npm run type-check && npm run test:unit && npm run build

test-docs: ## every relative link and #anchor in README.md, ARCHITECTURE.md and docs/ resolves
	python3 tests/docs/links.py

test-traefik: ## traefik.yml and traefik-swarm.yml are current renderings of traefik/static/, every way has the limits
	traefik/render.sh --check

test-e2e: release ## host mode through real Traefik: seed flows, scaling, kills, Redis restart
	python3 -m tests.e2e.run

test-ha: release ## Redis failover under load: real Sentinels and Traefik on loopback, with and without WAIT
	python3 -m tests.ha.run

test-browser: release ## Chromium drives the dashboard on a host-mode stack
	tests/browser.sh

test-compose: release ## the real compose.yaml on a real Docker engine
	deploy/docker/dockerd-up.sh
	deploy/docker/compose-plugin.sh
	tests/compose/run.sh

test-swarm: release ## stack.yaml on a one-node swarm of its own: rolling updates, scaling, kills under load
	deploy/docker/compose-plugin.sh
	tests/swarm/run.sh single

test-swarm-multi: release ## three engines in network namespaces, 3 managers: drain, node crash, rejoin
	deploy/docker/compose-plugin.sh
	tests/swarm/run.sh multi

test-quickstart: release ## from a clean clone: make up, the curl flows, make down; make local likewise
	deploy/docker/dockerd-up.sh
	deploy/docker/compose-plugin.sh
	tests/quickstart/run.sh

test-k8s: release ## the Helm chart: lint, schemas, checkov, render checks (no network); its pods under podman kube play
	.ci/deps k8s
	tests/k8s/run.sh

test-nix: ## flake parses, lock matches, frontend hash is current and reproducible
	.ci/nix-check

bench: release ## side-by-side benchmark with the original (prints a table, writes docs/)
	.ci/deps bench
	tests/bench/run.sh
