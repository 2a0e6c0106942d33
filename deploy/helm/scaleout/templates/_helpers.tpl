{{/* Names: <release>-scaleout unless the release name already says scaleout. */}}
{{- define "scaleout.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "scaleout.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels on everything; "scaleout.selector" (with .component) picks one component. */}}
{{- define "scaleout.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: scaleout
{{ include "scaleout.selector" . }}
{{- end }}

{{- define "scaleout.selector" -}}
app.kubernetes.io/name: {{ include "scaleout.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "scaleout.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "scaleout.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* An image reference: registry prefix (if any), name, tag. */}}
{{- define "scaleout.image" -}}
{{- $registry := .root.Values.image.registry | trimSuffix "/" }}
{{- if $registry }}{{ $registry }}/{{ end }}{{ .image }}:{{ .root.Values.image.tag }}
{{- end }}

{{/* The port of a listen address (host:port or [v6]:port). */}}
{{- define "scaleout.port" -}}
{{- splitList ":" . | last }}
{{- end }}

{{/* Which Redis: "external", "sentinel" or "standalone". */}}
{{- define "scaleout.redisMode" -}}
{{- if .Values.externalRedis.enabled }}external
{{- else if .Values.redis.sentinel.enabled }}sentinel
{{- else }}standalone
{{- end }}
{{- end }}

{{/* The Secret holding the Redis passwords, "" when there is none. */}}
{{- define "scaleout.redisSecret" -}}
{{- if .Values.externalRedis.enabled }}
{{- .Values.externalRedis.existingSecret }}
{{- else if .Values.redis.auth.enabled }}
{{- default (printf "%s-redis-auth" (include "scaleout.fullname" .)) .Values.redis.auth.existingSecret }}
{{- end }}
{{- end }}

{{- define "scaleout.sentinels" -}}
{{- $full := include "scaleout.fullname" . }}
{{- $list := list }}
{{- range $i := until 3 }}
{{- $list = append $list (printf "%s-sentinel-%d.%s-sentinel-headless:%d" $full $i $full (int $.Values.redis.sentinel.port)) }}
{{- end }}
{{- join "," $list }}
{{- end }}

{{/*
Redis settings of a client container (app or worker): .user is "app" or "worker".
Passwords are files from the Secret (REDIS_PASSWORD_FILE), never values.
*/}}
{{- define "scaleout.redisEnv" -}}
{{- $v := .root.Values }}
{{- $mode := include "scaleout.redisMode" .root }}
{{- $secret := include "scaleout.redisSecret" .root }}
{{- $user := .user }}
{{- if eq $mode "external" }}
{{- $user = index $v.externalRedis (printf "%sUsername" .user) }}
{{- if $v.externalRedis.sentinels }}
- name: REDIS_SENTINELS
  value: {{ $v.externalRedis.sentinels | quote }}
- name: REDIS_MASTER_NAME
  value: {{ $v.externalRedis.masterName | quote }}
{{- else }}
- name: REDIS_URL
  value: {{ $v.externalRedis.url | quote }}
{{- end }}
- name: REDIS_WAIT_REPLICAS
  value: {{ $v.externalRedis.waitReplicas | quote }}
{{- else if eq $mode "sentinel" }}
- name: REDIS_SENTINELS
  value: {{ include "scaleout.sentinels" .root | quote }}
- name: REDIS_MASTER_NAME
  value: {{ $v.redis.sentinel.masterName | quote }}
- name: REDIS_WAIT_REPLICAS
  value: {{ $v.redis.sentinel.waitReplicas | quote }}
{{- else }}
- name: REDIS_URL
  value: {{ printf "redis://%s-redis:%d" (include "scaleout.fullname" .root) (int $v.redis.port) | quote }}
{{- end }}
{{- if $secret }}
- name: REDIS_USERNAME
  value: {{ $user | quote }}
- name: REDIS_PASSWORD_FILE
  value: {{ printf "/run/secrets/redis-%s-password" .user | quote }}
{{- if or (eq $mode "sentinel") (and (eq $mode "external") $v.externalRedis.sentinels) }}
- name: REDIS_SENTINEL_USERNAME
  value: {{ $user | quote }}
- name: REDIS_SENTINEL_PASSWORD_FILE
  value: {{ printf "/run/secrets/redis-%s-password" .user | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* The Secret volume of a client container: only its own password. */}}
{{- define "scaleout.redisSecretVolume" -}}
{{- $secret := include "scaleout.redisSecret" .root }}
{{- if $secret }}
- name: redis-auth
  secret:
    secretName: {{ $secret }}
    defaultMode: 0440
    optional: false
    items:
      - key: {{ printf "redis-%s-password" .user }}
        path: {{ printf "redis-%s-password" .user }}
{{- end }}
{{- end }}

{{- define "scaleout.redisSecretMount" -}}
{{- if include "scaleout.redisSecret" .root }}
- name: redis-auth
  mountPath: /run/secrets
  readOnly: true
{{- end }}
{{- end }}

{{/* Settings every scaleout container gets, then the component's own (.env). */}}
{{- define "scaleout.commonEnv" -}}
- name: LOG_FORMAT
  value: {{ .root.Values.logFormat | quote }}
- name: RUST_LOG
  value: {{ .root.Values.rustLog | quote }}
{{- range $k, $val := .env }}
- name: {{ $k }}
  value: {{ $val | quote }}
{{- end }}
{{- end }}

{{/* Pod-level settings shared by every pod. */}}
{{- define "scaleout.podCommon" -}}
serviceAccountName: {{ include "scaleout.serviceAccountName" . }}
automountServiceAccountToken: false
enableServiceLinks: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if .Values.hostNetwork }}
hostNetwork: true
dnsPolicy: ClusterFirstWithHostNet
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end }}

{{/* An exec probe running `scaleout healthcheck URL` (.path on .listenAddr's port). */}}
{{- define "scaleout.probe" -}}
exec:
  command:
    - /bin/scaleout
    - healthcheck
    - {{ printf "http://127.0.0.1:%s%s" (include "scaleout.port" .listenAddr) .path }}
periodSeconds: {{ .probe.periodSeconds }}
timeoutSeconds: {{ .probe.timeoutSeconds }}
failureThreshold: {{ .probe.failureThreshold }}
{{- end }}

{{/*
Checkov checks this chart does not meet, each with its reason: annotations on the
resource (.checks: check ids; .root; .ours: it runs a scaleout image; .reasons: reasons of
this resource's own, by id). tests/k8s runs checkov and checks every skip has
a reason from here.
*/}}
{{- define "scaleout.checkovSkips" -}}
{{- $reasons := dict
  "CKV_K8S_43" "images are built here (make images, nix build) and pushed or loaded by tag: no digest exists before the push; pin an immutable image.tag"
  "CKV_K8S_15" "IfNotPresent: images loaded onto nodes without a registry must start; an immutable tag needs no pull on every start"
  "CKV_K8S_14" "latest is the tag make images and nix build give; an install on a cluster sets image.tag to the pushed version"
  "CKV_K8S_8" "serves no HTTP: nothing to probe; the jobs of a stuck worker return to the queue when its lease (JOB_VISIBILITY_SECS) runs out"
  "CKV_K8S_9" "serves no HTTP, takes no traffic: readiness means nothing for it"
  "CKV_K8S_40" "the redis image's own user 999:1000, which owns /data in the image"
}}
{{- $reasons = merge (default dict .reasons) $reasons }}
{{- $checks := .checks }}
{{- if and .ours (eq .root.Values.image.tag "latest") }}{{ $checks = append $checks "CKV_K8S_14" }}{{ end }}
{{- range $i, $id := $checks }}
checkov.io/skip{{ add1 $i }}: {{ printf "%s=%s" $id (index $reasons $id) | quote }}
{{- end }}
{{- end }}

{{/*
A probe command that PINGs Redis or a Sentinel on .port, as the nopass healthcheck user
when .auth. redis-cli exits 0 even on an error reply (NOAUTH), so the answer is compared.
*/}}
{{- define "scaleout.redisPing" -}}
- sh
- -c
- {{ printf "[ \"$(redis-cli -p %d%s ping)\" = PONG ]" (int .port) (ternary " --no-auth-warning --user healthcheck --pass healthcheck" "" .auth) | quote }}
{{- end }}
