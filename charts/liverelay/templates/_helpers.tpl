{{/* The base name of everything: the release name, with "liverelay" added unless it is in it already. */}}
{{- define "liverelay.fullname" -}}
{{- if contains "liverelay" .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-liverelay" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "liverelay.ingestKeyBook" -}}
{{- printf "%s-ingest-keys" (include "liverelay.fullname" .) -}}
{{- end -}}

{{- define "liverelay.gatewayName" -}}
{{- printf "%s-gateway" (include "liverelay.fullname" .) -}}
{{- end -}}

{{- define "liverelay.operatorName" -}}
{{- printf "%s-operator" (include "liverelay.fullname" .) -}}
{{- end -}}

{{- define "liverelay.operatorServiceAccount" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "liverelay.operatorName" .) .Values.serviceAccount.operatorName -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.operatorName -}}
{{- end -}}
{{- end -}}

{{- define "liverelay.gatewayServiceAccount" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "liverelay.gatewayName" .) .Values.serviceAccount.gatewayName -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.gatewayName -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "liverelay.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: liverelay
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* The gateway's pod labels: the operator's NetworkPolicies let exactly these pods reach the relays. */}}
{{- define "liverelay.gatewaySelector" -}}
app.kubernetes.io/name: liverelay-gateway
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "liverelay.operatorSelector" -}}
app.kubernetes.io/name: liverelay-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "liverelay.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "liverelay.relayImage" -}}
{{- printf "%s:%s" .Values.relayImage.repository (default .Chart.AppVersion .Values.relayImage.tag) -}}
{{- end -}}

{{/* Whether the operator makes preview Ingresses (and so needs permission on them). */}}
{{- define "liverelay.ingressEnabled" -}}
{{- if and .Values.ingress.className .Values.ingress.host -}}true{{- end -}}
{{- end -}}

{{- define "liverelay.consoleName" -}}
{{- printf "%s-console" (include "liverelay.fullname" .) -}}
{{- end -}}

{{/* The Secret of console users (bcrypt hashes), in the release's namespace. */}}
{{- define "liverelay.consoleUsersSecret" -}}
{{- default (printf "%s-console-users" (include "liverelay.fullname" .)) .Values.console.usersSecret -}}
{{- end -}}

{{- define "liverelay.consoleServiceAccount" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "liverelay.consoleName" .) .Values.serviceAccount.consoleName -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.consoleName -}}
{{- end -}}
{{- end -}}

{{- define "liverelay.consoleSelector" -}}
app.kubernetes.io/name: liverelay-console
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
