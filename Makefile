# scaleout: every command a user or contributor needs. `make help` lists them.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
N ?= 3
URL ?= http://localhost:8080/api/
MUSL := $(shell uname -m)-unknown-linux-musl
BIN := target/$(MUSL)/release/scaleout
export SCALEOUT_BIN := $(CURDIR)/$(BIN)

.PHONY: help build images up scale down clean logs ps load local local-scale release frontend \
        deps test test-rust test-frontend test-e2e test-ha test-browser test-compose test-nix bench

help: ## this list
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# ---- Docker Compose: the stack as users run it
build: ## build the three images with Nix and load them into Docker
	nix build .#image
	docker load < result

images: release frontend ## the same images without Nix (FROM scratch, from the musl build)
	tests/compose/build-images.sh scaleout

up: ## start the stack with N (3) replicas and wait until healthy; builds images if missing
	@docker image inspect scaleout-app:latest scaleout-worker:latest scaleout-web:latest >/dev/null 2>&1 || \
	  { if command -v nix >/dev/null; then $(MAKE) build; else $(MAKE) images; fi; }
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

# ---- Host mode: the same stack on loopback, no Docker
local: release frontend ## the whole stack on loopback, N replicas; HA=1: Redis primary, 2 replicas, 3 Sentinels
	tests/stack/local.sh up $(N)

local-scale: ## scale a running host-mode stack to N replicas
	tests/stack/local.sh scale $(N)

# ---- Builds
release: ## the static (musl) release binary
	cargo build --release --target $(MUSL)

frontend: ## the dashboard: frontend/dist
	cd frontend && npm ci --no-audit --no-fund && npm run build

# ---- Tests: `make test` is what CI runs
deps: ## install what the tests need (Debian, as root); see .ci/deps
	.ci/deps

test: deps test-rust test-frontend test-e2e test-ha test-browser test-compose test-nix ## everything

test-rust: ## unit and black-box tests against real Redis
	cargo test --all-targets

test-frontend: ## vue-tsc, vitest, and the production build
	cd frontend && npm ci --no-audit --no-fund && npm run type-check && npm run test:unit && npm run build

test-e2e: release ## host mode through real Traefik: seed flows, scaling, kills, Redis restart
	python3 tests/e2e/run.py

test-ha: release ## Redis failover under load: real Sentinels and Traefik on loopback, with and without WAIT
	python3 tests/ha/run.py

test-browser: release ## Chromium drives the dashboard on a host-mode stack
	tests/browser.sh

test-compose: release ## the real compose.yaml on a real Docker engine
	tests/compose/dockerd-up.sh
	tests/compose/compose-plugin.sh
	tests/compose/run.sh

test-nix: ## flake parses, lock matches, frontend hash is current and reproducible
	.ci/nix-check

bench: ## side-by-side benchmark with the original (prints a table, writes docs/)
	.ci/deps bench
	tests/bench/run.sh
