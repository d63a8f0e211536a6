{{/* Chart name, truncated to 63 characters (a DNS label). */}}
{{- define "rsafe.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified release name: <release>-<chart> unless the release already contains the chart name. */}}
{{- define "rsafe.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Names of the components' objects. */}}
{{- define "rsafe.gateway.fullname" -}}{{ include "rsafe.fullname" . }}{{- end -}}
{{- define "rsafe.vllm.fullname" -}}{{ printf "%s-vllm" (include "rsafe.fullname" . | trunc 58 | trimSuffix "-") }}{{- end -}}
{{- define "rsafe.redis.fullname" -}}{{ printf "%s-redis" (include "rsafe.fullname" . | trunc 57 | trimSuffix "-") }}{{- end -}}

{{- define "rsafe.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "rsafe.labels" -}}
helm.sh/chart: {{ include "rsafe.chart" . }}
app.kubernetes.io/name: {{ include "rsafe.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: rsafe-gateway
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component; call with (dict "ctx" $ "component" "gateway"). */}}
{{- define "rsafe.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rsafe.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Full labels of one component. */}}
{{- define "rsafe.componentLabels" -}}
{{ include "rsafe.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* An image reference repository:tag; the tag is required (no implicit latest). Call with (dict "image" .x.image "default" "tag"). */}}
{{- define "rsafe.image" -}}
{{- $tag := default .default .image.tag | toString -}}
{{- if or (eq $tag "") (eq $tag "latest") -}}
{{- fail (printf "image %s needs a pinned tag (not empty, not latest)" .image.repository) -}}
{{- end -}}
{{- if .image.digest -}}
{{- printf "%s:%s@%s" .image.repository $tag .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "rsafe.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "rsafe.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* URL of the model server the gateway calls. */}}
{{- define "rsafe.modelServerUrl" -}}
{{- if .Values.vllm.enabled -}}
{{- printf "http://%s:%d" (include "rsafe.vllm.fullname" .) (int .Values.vllm.service.port) -}}
{{- else -}}
{{- required "vllm.enabled=false needs gateway.modelServerUrl" .Values.gateway.modelServerUrl -}}
{{- end -}}
{{- end -}}

{{/* Name of the Secret holding the API-key hashes. */}}
{{- define "rsafe.authSecretName" -}}
{{- if .Values.gateway.auth.existingSecret -}}
{{- .Values.gateway.auth.existingSecret -}}
{{- else -}}
{{- printf "%s-api-keys" (include "rsafe.fullname" . | trunc 54 | trimSuffix "-") -}}
{{- end -}}
{{- end -}}

{{- define "rsafe.authSecretKey" -}}
{{- if .Values.gateway.auth.existingSecret -}}
{{- .Values.gateway.auth.existingSecretKey -}}
{{- else -}}
api-key-hashes
{{- end -}}
{{- end -}}

{{/* Pod security context shared by the chart's non-root pods. */}}
{{- define "rsafe.restrictedContainerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The decision log's PostgreSQL: the bundled one's objects, the Secret and key holding the URL, and when
migrations run (hook | start; `auto` resolved: hook for an external database, start for the bundled one). */}}
{{- define "rsafe.postgres.fullname" -}}{{ printf "%s-postgres" (include "rsafe.fullname" . | trunc 54 | trimSuffix "-") }}{{- end -}}

{{- define "rsafe.decisionLog.secretName" -}}
{{- if eq .Values.decisionLog.database "external" -}}
{{- required "decisionLog.database=external needs decisionLog.external.existingSecret (a Secret holding the database URL)" .Values.decisionLog.external.existingSecret -}}
{{- else -}}
{{- printf "%s-decision-log" (include "rsafe.fullname" . | trunc 50 | trimSuffix "-") -}}
{{- end -}}
{{- end -}}

{{- define "rsafe.decisionLog.secretKey" -}}
{{- if eq .Values.decisionLog.database "external" -}}
{{- .Values.decisionLog.external.existingSecretKey -}}
{{- else -}}
database-url
{{- end -}}
{{- end -}}

{{- define "rsafe.decisionLog.migrations" -}}
{{- if ne .Values.decisionLog.migrations "auto" -}}
{{- .Values.decisionLog.migrations -}}
{{- else if eq .Values.decisionLog.database "external" -}}
hook
{{- else -}}
start
{{- end -}}
{{- end -}}
