{{/* Names: the release name when it already contains the chart name (the default install,
     `helm install embedding-operator ...`, gives the same names as manifests/install). */}}
{{- define "embedding-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "embedding-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The pod's identity: the selector never changes across upgrades. */}}
{{- define "embedding-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "embedding-operator.name" . }}
app.kubernetes.io/component: controller
{{- end }}

{{/* Labels of every object: what manifests/install sets, plus Helm's own. */}}
{{- define "embedding-operator.labels" -}}
app.kubernetes.io/part-of: embedding-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "embedding-operator.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- if not (regexMatch "^sha256:[0-9a-f]{64}$" .Values.image.digest) }}
{{- fail (printf "image.digest %q is invalid: use sha256:<64 lowercase hex digits>" .Values.image.digest) }}
{{- end }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* Checks that fail the render with the field and the fix. */}}
{{- define "embedding-operator.validate" -}}
{{- if not (has .Values.mode (list "cluster-wide" "namespaced")) }}
{{- fail (printf "mode %q is invalid: use cluster-wide or namespaced" .Values.mode) }}
{{- end }}
{{- if not (has .Values.logFormat (list "text" "json")) }}
{{- fail (printf "logFormat %q is invalid: use text or json" .Values.logFormat) }}
{{- end }}
{{- if eq (int .Values.metrics.port) 8080 }}
{{- fail "metrics.port 8080 is the operator's health port: choose another port (default 9090)" }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.port) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.port (not 0)" }}
{{- end }}
{{- end }}

{{/* Namespaces that get a Role in namespaced mode. */}}
{{- define "embedding-operator.roleNamespaces" -}}
{{- if .Values.watchNamespaces }}
{{- toJson .Values.watchNamespaces }}
{{- else }}
{{- toJson (list .Release.Namespace) }}
{{- end }}
{{- end }}
