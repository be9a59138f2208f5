{{- define "modelloop.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "modelloop.serviceAccountName" -}}
{{- default (include "modelloop.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "modelloop.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "modelloop.labels" -}}
{{ include "modelloop.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "modelloop.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}
{{- end -}}

{{/* The rules the operator needs wherever it watches Models (see rbac.yaml). */}}
{{- define "modelloop.watchedRules" -}}
# Its own API: read the specs, write status; ModelVersions are made by trainings and
# deleted by history.keep.
- apiGroups: [modelloop.dev]
  resources: [models, modelversions, metrictemplates]
  verbs: [get, list, watch, patch]
- apiGroups: [modelloop.dev]
  resources: [modelversions]
  verbs: [create, delete]
- apiGroups: [modelloop.dev]
  resources: [models/status, modelversions/status]
  verbs: [patch]
# What it serves: a Deployment and a Service per version and one per Model.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, patch, delete]
# Trainings: Jobs it creates, relabels (its Model's shard label) and deletes, their pods'
# termination messages (listed once, when the Job has completed).
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
# Traffic: managed routes it creates, and the weights of user routes it patches.
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [get, list, watch, create, patch]
- apiGroups: [networking.istio.io]
  resources: [virtualservices]
  verbs: [get, list, watch, create, patch]
# KServe (spec.serving.kserve): the InferenceService it creates, or adopts and patches.
- apiGroups: [serving.kserve.io]
  resources: [inferenceservices]
  verbs: [get, list, watch, create, patch]
# Events that explain every decision.
- apiGroups: [""]
  resources: [events]
  verbs: [create]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create]
{{- end -}}
