{{/*
Names, labels and RBAC rules shared by the templates. Every helper is prefixed "kubeoidc.".
*/}}

{{/* kubeoidc.name is the chart name, or nameOverride. */}}
{{- define "kubeoidc.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
kubeoidc.fullname prefixes every resource name: "<release>-<chart>", or the release name alone when it
already contains the chart name, or fullnameOverride. Truncated so that "-operator" still fits in 63.
*/}}
{{- define "kubeoidc.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 53 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 53 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 53 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
kubeoidc.clusterName names a cluster-scoped object (ClusterRole, ClusterRoleBinding): it carries the
release namespace, so the same release name in two namespaces never collides. Takes (list . "suffix").
*/}}
{{- define "kubeoidc.clusterName" -}}
{{- $ctx := index . 0 }}
{{- printf "%s-%s-%s" $ctx.Release.Namespace (include "kubeoidc.fullname" $ctx) (index . 1) | trunc 253 | trimSuffix "-" }}
{{- end }}

{{/* kubeoidc.chart is "<name>-<version>" for the helm.sh/chart label. */}}
{{- define "kubeoidc.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* kubeoidc.selectorLabels selects one component's pods. Takes (dict "ctx" . "component" "operator"). */}}
{{- define "kubeoidc.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubeoidc.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* kubeoidc.labels are the labels of every object. Takes (dict "ctx" . "component" "operator"). */}}
{{- define "kubeoidc.labels" -}}
helm.sh/chart: {{ include "kubeoidc.chart" .ctx }}
{{ include "kubeoidc.selectorLabels" . }}
app.kubernetes.io/part-of: kubeoidc
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- end }}

{{/* kubeoidc.image is "<repository>:<tag>", the tag defaulting to the chart's appVersion. */}}
{{- define "kubeoidc.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* kubeoidc.issuer is the issuer URL; rendering stops with a clear message when it is missing. */}}
{{- define "kubeoidc.issuer" -}}
{{- required "issuer is required: set it to the provider's public URL, e.g. --set issuer=https://login.example.com" .Values.issuer }}
{{- end }}

{{/* kubeoidc.namespaces is watchNamespaces as the comma list the settings read; empty means all. */}}
{{- define "kubeoidc.namespaces" -}}
{{- join "," .Values.watchNamespaces }}
{{- end }}

{{/* kubeoidc.operator.serviceAccountName is the operator's ServiceAccount. */}}
{{- define "kubeoidc.operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (printf "%s-operator" (include "kubeoidc.fullname" .)) .Values.serviceAccount.operatorName }}
{{- else }}
{{- default "default" .Values.serviceAccount.operatorName }}
{{- end }}
{{- end }}

{{/* kubeoidc.provider.serviceAccountName is the provider's ServiceAccount. */}}
{{- define "kubeoidc.provider.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (printf "%s-provider" (include "kubeoidc.fullname" .)) .Values.serviceAccount.providerName }}
{{- else }}
{{- default "default" .Values.serviceAccount.providerName }}
{{- end }}
{{- end }}

{{/* kubeoidc.signingKeysSecretName is the Secret holding the provider's private JWKS (key jwks.json). */}}
{{- define "kubeoidc.signingKeysSecretName" -}}
{{- default (printf "%s-signing-keys" (include "kubeoidc.fullname" .)) .Values.signingKeys.secretName }}
{{- end }}

{{/* kubeoidc.usersSecretName is the Secret holding the provider's users (key users.yaml). */}}
{{- define "kubeoidc.usersSecretName" -}}
{{- default (printf "%s-users" (include "kubeoidc.fullname" .)) .Values.users.secretName }}
{{- end }}

{{/*
kubeoidc.operator.rules is what the operator does in each namespace it serves.
*/}}
{{- define "kubeoidc.operator.rules" -}}
# OIDCClients: kopf lists and watches them, patches its finalizer and annotations, and the reconcile
# reads them.
- apiGroups: ["kubeoidc.io"]
  resources: ["oidcclients"]
  verbs: ["get", "list", "watch", "patch"]
# Status is a subresource: conditions, client ID and the last honoured rotation are written there.
- apiGroups: ["kubeoidc.io"]
  resources: ["oidcclients/status"]
  verbs: ["get", "patch", "update"]
# A Secret's ownerReference has blockOwnerDeletion: with the OwnerReferencesPermissionEnforcement
# admission plugin, setting it requires update on the owner's finalizers.
- apiGroups: ["kubeoidc.io"]
  resources: ["oidcclients/finalizers"]
  verbs: ["update"]
# Secrets: the operator writes only the Secrets it owns (controller ownerReference, managed-by label),
# and never touches one it does not own. Kubernetes RBAC cannot scope rights by label or owner, so the
# verbs are namespace-wide; the ownership check is in the operator. No "update": changes are patches.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Events tell a person what happened (created, rotated, conflict). kopf posts core/v1 Events; the
# events.k8s.io/v1 API serves the same objects to a newer recorder, whose patch counts a repeated Event
# instead of creating another one.
- apiGroups: ["", "events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{/*
kubeoidc.operator.clusterRules is what kopf itself needs at cluster scope.
*/}}
{{- define "kubeoidc.operator.clusterRules" -}}
# kopf watches CustomResourceDefinitions to notice the OIDCClient resource appear, change or go away
# (resource observation); without it, kopf logs a warning and only scans once at start.
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
{{- if .Values.watchNamespaces }}
# With a namespace list, kopf lists and watches namespaces to serve the listed ones as they come and go
# (namespace observation); cluster-wide, it watches OIDCClients of all namespaces at once instead.
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- end }}
{{- end }}

{{/*
kubeoidc.provider.rules is the provider's read-only access: registrations from OIDCClients, credentials
from the operator's Secrets. Nothing else.
*/}}
{{- define "kubeoidc.provider.rules" -}}
- apiGroups: ["kubeoidc.io"]
  resources: ["oidcclients"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"]
{{- end }}
