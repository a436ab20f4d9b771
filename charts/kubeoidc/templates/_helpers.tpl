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

{{/* kubeoidc.signingKeysSecretRef is "<release namespace>/<Secret>": the managed keys, as both settings read it. */}}
{{- define "kubeoidc.signingKeysSecretRef" -}}
{{- printf "%s/%s" .Release.Namespace (include "kubeoidc.signingKeysSecretName" .) }}
{{- end }}

{{/*
kubeoidc.releaseNamespaceServed is "true" when the release namespace is among the served ones (all, or
listed): the rights given there for OIDCClients already cover the signing-keys Secret. Else "".
*/}}
{{- define "kubeoidc.releaseNamespaceServed" -}}
{{- if or (not .Values.watchNamespaces) (has .Release.Namespace .Values.watchNamespaces) }}true{{ end }}
{{- end }}

{{/*
kubeoidc.signingKeysRole is "true" when the managed signing-keys Secret needs a Role of its own: the
release namespace is not served, so nothing else grants its rights there. Else "".
*/}}
{{- define "kubeoidc.signingKeysRole" -}}
{{- if and .Values.rbac.create .Values.signingKeys.managed (not (include "kubeoidc.releaseNamespaceServed" .)) }}true{{ end }}
{{- end }}

{{/*
kubeoidc.seconds turns a duration as the operator reads it ("720h", "30d", "1h30m") into seconds.
*/}}
{{- define "kubeoidc.seconds" -}}
{{- $units := dict "d" 86400 "h" 3600 "m" 60 "s" 1 }}
{{- $total := 0 }}
{{- range regexFindAll "[0-9]+[dhms]" . -1 }}
{{- $total = add $total (mul (regexFind "[0-9]+" . | atoi) (get $units (regexFind "[dhms]" .))) }}
{{- end }}
{{- $total }}
{{- end }}

{{/*
kubeoidc.peeringName names the ClusterKopfPeering object of the operator's replicas; cluster-scoped, so
the default carries the release namespace (absent only when rendering without one, as `helm lint` does).
*/}}
{{- define "kubeoidc.peeringName" -}}
{{- default (printf "%s.%s" .Release.Namespace (include "kubeoidc.fullname" .) | trimPrefix ".") .Values.operator.peering.name }}
{{- end }}

{{/* kubeoidc.redisName names the bundled Redis's Deployment, Service and NetworkPolicy. */}}
{{- define "kubeoidc.redisName" -}}
{{- printf "%s-redis" (include "kubeoidc.fullname" .) }}
{{- end }}

{{/* kubeoidc.redisPasswordSecret is the Secret holding the bundled Redis's password: the user's or the
generated "<fullname>-redis". */}}
{{- define "kubeoidc.redisPasswordSecret" -}}
{{- default (include "kubeoidc.redisName" .) .Values.provider.storage.redis.bundled.auth.existingSecret.name }}
{{- end }}

{{/* kubeoidc.redisPasswordKey is that Secret's key holding the password. */}}
{{- define "kubeoidc.redisPasswordKey" -}}
{{- if .Values.provider.storage.redis.bundled.auth.existingSecret.name }}
{{- .Values.provider.storage.redis.bundled.auth.existingSecret.key }}
{{- else }}password{{ end }}
{{- end }}

{{/* kubeoidc.stateClaim names the PersistentVolumeClaim of the SQLite state: the user's or the chart's. */}}
{{- define "kubeoidc.stateClaim" -}}
{{- default (printf "%s-provider-state" (include "kubeoidc.fullname" .)) .Values.provider.storage.sqlite.persistence.existingClaim }}
{{- end }}

{{/* kubeoidc.forwardedAllowIps is every proxy the provider believes: forwardedAllowIps and the ingress
controllers' CIDRs. */}}
{{- define "kubeoidc.forwardedAllowIps" -}}
{{- join "," (concat (list .Values.provider.forwardedAllowIps) .Values.ingress.controllerCIDRs) }}
{{- end }}

{{/*
kubeoidc.storage checks the provider's storage settings, stopping rendering with a clear message when
they cannot work, and returns the storage type.
*/}}
{{- define "kubeoidc.storage" -}}
{{- $storage := .Values.provider.storage }}
{{- $redis := $storage.redis }}
{{- if eq $storage.type "sqlite" }}
{{- if gt (int .Values.provider.replicaCount) 1 }}
{{- fail (printf "provider.replicaCount is %d, but provider.storage.type sqlite keeps the state in one file that one pod at a time may use: more than one provider needs provider.storage.type=redis (with provider.storage.redis.url, .existingSecret.name or .bundled.enabled)" (int .Values.provider.replicaCount)) }}
{{- end }}
{{- if $redis.bundled.enabled }}
{{- fail "provider.storage.redis.bundled.enabled runs a Redis the provider uses only with provider.storage.type=redis: set that too, or disable the bundled Redis" }}
{{- end }}
{{- else }}
{{- $sources := 0 }}
{{- if $redis.url }}{{ $sources = add1 $sources }}{{ end }}
{{- if $redis.existingSecret.name }}{{ $sources = add1 $sources }}{{ end }}
{{- if $redis.bundled.enabled }}{{ $sources = add1 $sources }}{{ end }}
{{- if ne (int $sources) 1 }}
{{- fail (printf "provider.storage.type redis needs exactly one Redis, but %d are set: provider.storage.redis.url (a URL without a password), provider.storage.redis.existingSecret.name (a Secret holding the URL) or provider.storage.redis.bundled.enabled (a Redis for trials)" (int $sources)) }}
{{- end }}
{{- end }}
{{- $storage.type }}
{{- end }}

{{/*
kubeoidc.minAvailable renders a PodDisruptionBudget's minAvailable, refusing a number that would block
every eviction. Takes (dict "value" minAvailable "replicas" replicaCount "key" "provider").
*/}}
{{- define "kubeoidc.minAvailable" -}}
{{- if kindIs "string" .value }}
{{- .value | quote }}
{{- else }}
{{- if ge (int .value) (int .replicas) }}
{{- fail (printf "%s.podDisruptionBudget.minAvailable (%d) must be below %s.replicaCount (%d): otherwise no pod may ever be evicted and node drains hang" .key (int .value) .key (int .replicas)) }}
{{- end }}
{{- .value | int }}
{{- end }}
{{- end }}

{{/*
kubeoidc.affinity is the pods' affinity: the user's, or else a preferred anti-affinity that spreads one
component's replicas over nodes. Takes (dict "ctx" . "component" "provider" "affinity" {...}).
*/}}
{{- define "kubeoidc.affinity" -}}
{{- if .affinity }}
{{- toYaml .affinity }}
{{- else -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "kubeoidc.selectorLabels" (dict "ctx" .ctx "component" .component) | nindent 12 }}
{{- end }}
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
{{- if gt (int .Values.operator.replicaCount) 1 }}
# Several replicas: kopf's peering. Each replica watches the ClusterKopfPeering objects (kopf picks its
# own by name from the stream), reads its own, and patches its keep-alive record into the status.
- apiGroups: ["kopf.dev"]
  resources: ["clusterkopfpeerings"]
  verbs: ["get", "list", "watch", "patch"]
{{- end }}
{{- end }}

{{/*
kubeoidc.provider.rules is the provider's read-only access: registrations from OIDCClients, the
digests of their credentials, which the operator publishes in their status, and the names and uids of
ServiceAccounts (a client that ServiceAccount tokens authenticate refuses the tokens of a deleted and
re-created one). No Secret: the provider faces the internet, and a compromise of it must not leak the
Secrets of the namespaces it serves.
*/}}
{{- define "kubeoidc.provider.rules" -}}
- apiGroups: ["kubeoidc.io"]
  resources: ["oidcclients"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["serviceaccounts"]
  verbs: ["get", "list", "watch"]
{{- end }}

{{/*
kubeoidc.providerSigningKeysRole is "true" when the provider needs a Role to read the managed
signing-keys Secret: always with managed keys, as no other rule lets it read a Secret. Else "".
*/}}
{{- define "kubeoidc.providerSigningKeysRole" -}}
{{- if and .Values.rbac.create .Values.signingKeys.managed }}true{{ end }}
{{- end }}

{{/*
kubeoidc.operator.signingKeysRules is the operator's access to the managed signing-keys Secret, when
the release namespace is not served: read and rewrite that one Secret, and create it (Kubernetes cannot
limit a create to a name).
*/}}
{{- define "kubeoidc.operator.signingKeysRules" -}}
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["create"]
- apiGroups: [""]
  resources: ["secrets"]
  resourceNames: [{{ include "kubeoidc.signingKeysSecretName" . | quote }}]
  verbs: ["get", "patch"]
{{- end }}

{{/*
kubeoidc.provider.signingKeysRules is the provider's read access to the managed signing-keys Secret,
its only access to any Secret. The provider reads it by name and watches it with a
metadata.name field selector, which RBAC matches against resourceNames.
*/}}
{{- define "kubeoidc.provider.signingKeysRules" -}}
- apiGroups: [""]
  resources: ["secrets"]
  resourceNames: [{{ include "kubeoidc.signingKeysSecretName" . | quote }}]
  verbs: ["get", "list", "watch"]
{{- end }}

{{/*
kubeoidc.provider.identitySourceRules is the provider's read access, in the release namespace only, to
the IdentitySources it offers and to the Secrets they name (client secrets, bind passwords, CAs).
*/}}
{{- define "kubeoidc.provider.identitySourceRules" -}}
- apiGroups: ["kubeoidc.io"]
  resources: ["identitysources"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"]
{{- end }}

{{/*
kubeoidc.operator.identitySourceRules is the operator's access, in the release namespace only, to the
IdentitySources it checks: kopf watches them and patches its annotations, the checks' outcome goes to
the status subresource, and the Secrets they name are read for the checks (never written).
*/}}
{{- define "kubeoidc.operator.identitySourceRules" -}}
- apiGroups: ["kubeoidc.io"]
  resources: ["identitysources"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["kubeoidc.io"]
  resources: ["identitysources/status"]
  verbs: ["get", "patch"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"]
{{- end }}
