{{/*
NOTES.txt's part of one target (its context): what it backs up, where, when,
then its backup-now and restore commands (sauve.runCommands).
*/}}
{{- define "sauve.notesTarget" -}}
{{- $ns := .Release.Namespace -}}
{{- $name := include "sauve.cronJobName" . -}}
{{- $c := .Values.config -}}
{{- /* config.pg.databases is a list or a comma-separated string (as
SAUVE_PG_DATABASES): both print the same. */ -}}
{{- $dbs := $c.pg.databases | default list -}}
{{- if kindIs "string" $dbs -}}
{{- $dbs = compact (splitList "," ($dbs | nospace)) -}}
{{- end -}}
{{- $trees := include "sauve.fileTrees" . | fromYamlArray -}}
{{- $redisOn := include "sauve.redisOn" . -}}
{{- $what := list -}}
{{- if or $c.pg.host (not (or $trees $redisOn)) -}}
{{- $what = append $what (printf "PostgreSQL %s (%s)" (default "(config.pg.host not set)" $c.pg.host) (ternary (join ", " $dbs) "$PGDATABASE" (not (empty $dbs)))) -}}
{{- end -}}
{{- if $redisOn -}}
{{- $what = append $what (printf "Redis %s (redis:%s)" (default "(URL in the Secret)" ($c.redis.url | default "" | regexFind "[^/@]+(:[0-9]+)?/?$")) (default "default" $c.redis.name)) -}}
{{- end -}}
{{- range $trees -}}
{{- $what = append $what (printf "the tree %s (files:%s, claim %s)" .path .name .claimName) -}}
{{- end -}}
{{ with get . "Target" }}Target {{ . }}: {{ end }}sauve backs up {{ join ", " $what }} to {{ default "(config.storage not set)" $c.storage }}
on schedule "{{ .Values.schedule }}"{{ with .Values.timeZone }} ({{ . }}){{ end }}{{ if .Values.suspend }}, SUSPENDED{{ end }}, series "{{ default "default" $c.name }}".
{{- $age := $c.age | default dict }}
{{- $identity := .Values.restore.ageIdentity | default dict }}
{{- $encrypted := include "sauve.ageEncrypted" . }}
{{- if $encrypted }}
Encrypted with age to {{ if $age.recipients }}{{ join ", " $age.recipients }}{{ end }}{{ if and $age.recipients $age.recipients_file }} and {{ end }}{{ with $age.recipients_file }}the recipients of {{ . }}{{ end }}{{ if not (or $age.recipients $age.recipients_file) }}the recipients of extraEnv{{ end }}; restores need an identity of one of them in the Secret {{ if $identity.existingSecret }}{{ $identity.existingSecret }} (restore.ageIdentity.existingSecret){{ else }}of restore.ageIdentity.existingSecret (not set yet){{ end }}, created with:
  kubectl create secret generic {{ default "sauve-age-identity" $identity.existingSecret }} -n {{ $ns }} --from-file={{ default "identity.txt" $identity.key }}=PATH
{{- end }}
{{- if not $c.storage }}

WARNING: config.storage is not set: every run will fail with a configuration
error (exit 78). Set it, for example:
  helm upgrade {{ .Release.Name }} <chart> -n {{ $ns }} --reuse-values --set {{ with get . "Target" }}targets.{{ . }}.{{ end }}config.storage=s3://my-bucket/prod
{{- end }}

{{ include "sauve.runCommands" . }}
{{- if include "sauve.drillOn" . }}
{{- $d := .Values.drill }}
{{- $dcj := include "sauve.drillCronJobName" . }}

Restore drill ({{ $dcj }}): on schedule "{{ $d.schedule }}"{{ with default .Values.timeZone $d.timeZone }} ({{ . }}){{ end }}{{ if $d.suspend }}, SUSPENDED{{ end }},
the {{ if $d.set }}set {{ $d.set }}{{ else }}latest set{{ end }} restored into {{ default "(no PostgreSQL)" $d.scratch.host }}, compared with its manifest, then dropped.
Run a drill now, and follow it:
  job={{ include "sauve.drillManualJobPrefix" . }}-$(date +%Y%m%d%H%M%S)
  kubectl create job -n {{ $ns }} --from=cronjob/{{ $dcj }} "$job"
  kubectl logs -n {{ $ns }} -f "job/$job" --pod-running-timeout=5m
{{- end }}
{{- end -}}
