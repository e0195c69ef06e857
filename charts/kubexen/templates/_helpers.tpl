{{- define "kubexen.labels" -}}
app.kubernetes.io/name: kubexen
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- define "kubexen.image" -}}
{{- $tag := .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{ printf "%s/%s/%s:%s" .root.Values.image.registry .root.Values.image.repository .component $tag }}
{{- end }}

{{- define "kubexen.migrationSecret" -}}
{{ .Values.migration.existingSecret | default "kubexen-migration" }}
{{- end }}
