{
  description = "scaleout: a stateful web app that scales out behind Traefik, all state in Redis";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;

      # Packages, images and checks are built natively on each Linux system.
      linuxSystems = [
        "x86_64-linux"
        "aarch64-linux"
      ];

      # The development shell is also offered on macOS.
      allSystems = linuxSystems ++ [
        "x86_64-darwin"
        "aarch64-darwin"
      ];

      forSystems =
        systems: f:
        lib.genAttrs systems (
          system:
          f {
            inherit system;
            pkgs = pkgsFor system;
          }
        );

      # nixpkgs 26.05 is the last release for Intel Macs and warns so on every
      # evaluation for x86_64-darwin, also of all systems' outputs on Linux (e.g.
      # `nix flake check --all-systems`). Its config option allowDeprecatedx86_64Darwin = true
      # silences that warning (26.05 only: 26.11 drops the system unless set to
      # "force"; drop x86_64-darwin here when moving past 26.05). The other systems
      # keep the flake's own package set, so their derivations are unchanged.
      pkgsFor =
        system:
        if system == "x86_64-darwin" then
          import nixpkgs {
            inherit system;
            config.allowDeprecatedx86_64Darwin = true;
          }
        else
          nixpkgs.legacyPackages.${system};

      cargoToml = lib.importTOML ./Cargo.toml;
      inherit (cargoToml.package) version;
      description = cargoToml.package.description or "scaleout";

      # NAR hash (SRI, sha256) of the built frontend/dist, i.e. the output of the
      # fixed-output derivation `frontend` below. .ci/nix-check rebuilds the
      # frontend twice and fails, printing the new value, when this is stale.
      # Refresh with: .ci/nix-check --update-frontend-hash
      frontendDistHash = "sha256-UmN0yNsRkzNftcnP5ndYgulEogJVdA3S6D1RKQWiQU8="; # frontend-dist-hash

      webRoot = "/srv/www";

      # Docker wants durations in nanoseconds.
      seconds = 1000000000;

      # OCI labels; `source` is taken from Cargo.toml's `repository` when set.
      labelsFor =
        role:
        {
          "org.opencontainers.image.title" = "scaleout-${role}";
          "org.opencontainers.image.description" = "${description} (${role})";
          "org.opencontainers.image.version" = version;
          "org.opencontainers.image.licenses" = cargoToml.package.license or "NOASSERTION";
        }
        // lib.optionalAttrs (cargoToml.package ? repository) {
          "org.opencontainers.image.source" = cargoToml.package.repository;
        };

      # Only the Rust sources go into the binary's build, so editing the
      # frontend, the docs or the flake does not rebuild it.
      rustSource = lib.fileset.toSource {
        root = ./.;
        fileset = lib.fileset.unions (
          [
            ./Cargo.toml
            ./Cargo.lock
            ./src
          ]
          # A repo-level cargo config (e.g. rustflags) also applies inside Nix.
          ++ lib.optional (builtins.pathExists ./.cargo) ./.cargo
          ++ lib.optional (builtins.pathExists ./build.rs) ./build.rs
        );
      };

      frontendSource = lib.cleanSourceWith {
        name = "scaleout-frontend-source";
        src = ./frontend;
        filter =
          path: type:
          !(builtins.elem (baseNameOf path) [
            "node_modules"
            "dist"
          ]);
      };

      mkPackages =
        { pkgs, ... }:
        let
          # Fully static musl binary, built natively (no cross toolchain from
          # another architecture is involved).
          scaleout = pkgs.pkgsStatic.rustPlatform.buildRustPackage {
            pname = "scaleout";
            inherit version;
            src = rustSource;
            cargoLock.lockFile = ./Cargo.lock;

            # The test suite needs a running Redis; CI runs it outside Nix.
            doCheck = false;

            # mimalloc's C code (libmimalloc-sys) would otherwise be built with
            # GCC's outline atomics, whose helpers are missing when linking
            # statically against musl on aarch64.
            env = lib.optionalAttrs pkgs.stdenv.hostPlatform.isAarch64 {
              CFLAGS_aarch64_unknown_linux_musl = "-mno-outline-atomics";
            };

            meta = {
              inherit description;
              mainProgram = "scaleout";
              platforms = lib.platforms.linux;
            };
          };

          # frontend/dist as a fixed-output derivation: package-lock.json has no
          # `resolved` URLs, so the npm registry is reached with network access
          # (allowed for fixed-output derivations) and the result is pinned by
          # frontendDistHash instead.
          frontend = pkgs.stdenv.mkDerivation {
            pname = "scaleout-frontend";
            inherit version;
            src = frontendSource;

            nativeBuildInputs = [ pkgs.nodejs ];

            impureEnvVars = lib.fetchers.proxyImpureEnvVars;

            # TLS to the registry: the sandbox has no /etc/ssl.
            env = {
              SSL_CERT_FILE = "${pkgs.cacert}/etc/ssl/certs/ca-bundle.crt";
              NODE_EXTRA_CA_CERTS = "${pkgs.cacert}/etc/ssl/certs/ca-bundle.crt";
            };

            dontConfigure = true;

            buildPhase = ''
              runHook preBuild

              export HOME="$TMPDIR/home"
              export npm_config_cache="$TMPDIR/npm-cache"
              export npm_config_update_notifier=false
              export npm_config_fund=false
              export npm_config_audit=false
              mkdir -p "$HOME" "$npm_config_cache"

              npm ci --ignore-scripts --no-audit --no-fund
              # There is no /usr/bin/env in the build sandbox.
              patchShebangs node_modules
              npm run build

              runHook postBuild
            '';

            # Precompressed siblings (X.gz and X.br next to X) depend on the zlib
            # and brotli that the build's Node.js links, so they are kept out of
            # this hash-pinned output and made again in `web-root`.
            installPhase = ''
              runHook preInstall
              find dist -type f \( -name '*.gz' -o -name '*.br' \) -print0 |
                while IFS= read -r -d "" f; do
                  if [ -f "''${f%.*}" ]; then rm -- "$f"; fi
                done
              cp -R dist "$out"
              runHook postInstall
            '';

            # The output is pinned by its hash: nothing may rewrite it.
            dontFixup = true;

            outputHashMode = "recursive";
            outputHashAlgo = "sha256";
            outputHash = frontendDistHash;
          };

          # What `scaleout web` serves from WEB_ROOT: the pinned frontend build
          # plus .gz/.br siblings for compressible files of 1 KiB or more, kept
          # only when smaller (the rule of frontend/build/precompress.ts).
          webRootFiles =
            pkgs.runCommand "scaleout-web-root"
              {
                nativeBuildInputs = [
                  pkgs.gzip
                  pkgs.brotli
                ];
              }
              ''
                cp -R ${frontend} "$out"
                chmod -R u+w "$out"
                find "$out" -type f -size +1023c -regextype posix-extended \
                  -regex '.*\.(js|mjs|css|html|svg|json|txt|map)' -print0 |
                  sort -z |
                  while IFS= read -r -d "" f; do
                    size=$(stat -c %s "$f")
                    gzip -9 -n -c "$f" > "$f.gz"
                    if [ "$(stat -c %s "$f.gz")" -ge "$size" ]; then rm "$f.gz"; fi
                    brotli -q 11 -c "$f" > "$f.br"
                    if [ "$(stat -c %s "$f.br")" -ge "$size" ]; then rm "$f.br"; fi
                  done
              '';

          mkImage =
            {
              role,
              # `scaleout healthcheck` probes the HTTP server of app and web;
              # the worker serves no HTTP, so its image has no healthcheck.
              serves ? true,
              extraEnv ? [ ],
              extraCommands ? "",
            }:
            pkgs.dockerTools.buildLayeredImage {
              name = "scaleout-${role}";
              tag = "latest";
              # Fixed dates keep the image reproducible.
              created = "1970-01-01T00:00:01Z";
              # Only the static binary: no shell, no libc, no coreutils.
              contents = [ scaleout ];
              inherit extraCommands;
              config = {
                Entrypoint = [
                  "/bin/scaleout"
                  role
                ];
                User = "65534:65534";
                WorkingDir = "/";
                Env = [
                  "REDIS_URL=redis://redis:6379"
                  "LISTEN_ADDR=0.0.0.0:8080"
                  "LOG_FORMAT=json"
                  "RUST_LOG=info,ntex=warn"
                  "DRAIN_SECS=5"
                  # mimalloc without transparent huge pages: a third of the memory for
                  # about 4 % more CPU per request (docs/bench.md, section 4)
                  "MIMALLOC_ALLOW_THP=0"
                ]
                ++ extraEnv;
                Labels = labelsFor role;
              }
              // lib.optionalAttrs serves {
                ExposedPorts = {
                  "8080/tcp" = { };
                };
                Healthcheck = {
                  Test = [
                    "CMD"
                    "/bin/scaleout"
                    "healthcheck"
                  ];
                  Interval = 5 * seconds;
                  Timeout = 3 * seconds;
                  StartPeriod = 5 * seconds;
                  Retries = 3;
                };
              };
            };

          app = mkImage { role = "app"; };

          worker = mkImage {
            role = "worker";
            serves = false;
          };

          # The web root is copied (not linked) to WEB_ROOT: `scaleout web`
          # serves plain files from a plain directory and follows no symlinks.
          web = mkImage {
            role = "web";
            extraEnv = [ "WEB_ROOT=${webRoot}" ];
            extraCommands = ''
              mkdir -p .${dirOf webRoot}
              cp -R ${webRootFiles} .${webRoot}
              chmod -R u=rwX,go=rX .${dirOf webRoot}
            '';
          };
        in
        {
          inherit scaleout frontend;
          default = scaleout;
          web-root = webRootFiles;
          scaleout-app = app;
          scaleout-worker = worker;
          scaleout-web = web;
          # `nix build .#image && docker load < result` loads all three images.
          image = pkgs.dockerTools.mergeImages [
            app
            worker
            web
          ];
        };
    in
    {
      packages = forSystems linuxSystems mkPackages;

      checks = forSystems linuxSystems (
        { system, pkgs }:
        let
          packages = self.packages.${system};
        in
        {
          inherit (packages) scaleout frontend web-root image;

          # A static binary has no program interpreter and needs no shared
          # libraries, so it runs in an image that contains nothing else.
          static-binary =
            pkgs.runCommand "scaleout-static-binary-check"
              {
                nativeBuildInputs = [
                  pkgs.binutils
                  pkgs.file
                ];
              }
              ''
                bin=${lib.getExe packages.scaleout}
                file "$bin"
                readelf -lW "$bin" > program-headers.txt
                readelf -dW "$bin" > dynamic-section.txt
                if grep -q INTERP program-headers.txt; then
                  echo "error: $bin has a program interpreter (it is not static)" >&2
                  cat program-headers.txt >&2
                  exit 1
                fi
                if grep -q NEEDED dynamic-section.txt; then
                  echo "error: $bin needs shared libraries" >&2
                  cat dynamic-section.txt >&2
                  exit 1
                fi
                touch "$out"
              '';

          frontend-index = pkgs.runCommand "scaleout-frontend-index-check" { } ''
            test -f ${packages.frontend}/index.html
            touch "$out"
          '';
        }
      );

      devShells = forSystems allSystems (
        { pkgs, ... }:
        {
          default = pkgs.mkShell {
            packages = [
              pkgs.cargo
              pkgs.rustc
              pkgs.clippy
              pkgs.rustfmt
              pkgs.rust-analyzer
              pkgs.nodejs
              pkgs.redis
              pkgs.traefik
              pkgs.docker-compose
              pkgs.nixfmt
            ]
            ++ lib.optionals pkgs.stdenv.hostPlatform.isLinux [
              pkgs.wrk
              pkgs.hey
            ];
          };
        }
      );

      formatter = forSystems allSystems ({ pkgs, ... }: pkgs.nixfmt-tree);
    };
}
