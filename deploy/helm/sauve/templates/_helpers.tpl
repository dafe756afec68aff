{{/*
Names and labels, built once. Kubernetes names and label values are limited
to 63 characters, so every name is truncated there (without a trailing dash).
*/}}

{{/* The chart's name, or nameOverride. */}}
{{- define "sauve.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The prefix of every resource name: fullnameOverride, else RELEASE-NAME, or
just RELEASE when the release name already contains the chart's name
(`helm install sauve ./sauve` gives "sauve", not "sauve-sauve").
*/}}
{{- define "sauve.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "sauve.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
A name derived from the full name with a suffix ("restore-3", "check"): the
full name is shortened first so that the suffix always survives.
Call with (dict "root" $ "suffix" "check").
*/}}
{{- define "sauve.suffixedName" -}}
{{- $suffix := printf "-%s" .suffix -}}
{{- $max := sub 63 (len $suffix) | int -}}
{{- printf "%s%s" (include "sauve.fullname" .root | trunc $max | trimSuffix "-") $suffix -}}
{{- end -}}

{{/*
A name cut to .max characters that stays unique: a longer name keeps its
first max-9 characters and gets "-" and 8 hex digits of its SHA-256, so two
long names that differ only at the end stay two names.
Call with (dict "name" NAME "max" N).
*/}}
{{- define "sauve.truncName" -}}
{{- $max := int .max -}}
{{- if gt (len .name) $max -}}
{{- printf "%s-%s" (.name | trunc (sub $max 9 | int) | trimSuffix "-") (sha256sum .name | trunc 8) -}}
{{- else -}}
{{- .name -}}
{{- end -}}
{{- end -}}

{{/*
The CronJob's name: the full name, cut to 52 characters, the API server's
limit for a CronJob (its Jobs are NAME-<11 digits>, at most 63).
*/}}
{{- define "sauve.cronJobName" -}}
{{- $base := include "sauve.fullname" . -}}
{{- with get . "Target" -}}
{{- $base = printf "%s-%s" $base . -}}
{{- end -}}
{{- include "sauve.truncName" (dict "name" $base "max" 52) -}}
{{- end -}}

{{/*
The names of the targets: the keys of .Values.targets, sorted, or [""] for
the single target the top-level values describe. As YAML: fromYamlArray.
*/}}
{{- define "sauve.targetNames" -}}
{{- if .Values.targets -}}
{{- keys .Values.targets | sortAlpha | toYaml -}}
{{- else -}}
{{- list "" | toYaml -}}
{{- end -}}
{{- end -}}

{{/*
The values of one target: the top-level values with the target's entry of
.Values.targets merged over them (maps key by key, anything else replaced),
its series named after it unless it names one. As YAML: fromYaml.
Call with (dict "root" $ "name" NAME); NAME "" is the top-level values.
*/}}
{{- define "sauve.targetValues" -}}
{{- if .name -}}
{{- $over := index .root.Values.targets .name | default dict -}}
{{- $v := include "sauve.deepMerge" (dict "base" (omit .root.Values "targets") "over" $over) | fromYaml -}}
{{- if not (($over.config | default dict).name) -}}
{{- $_ := set $v.config "name" .name -}}
{{- end -}}
{{- toYaml $v -}}
{{- else -}}
{{- toYaml .root.Values -}}
{{- end -}}
{{- end -}}

{{/*
The context every per-target template renders with: the root's Release,
Chart, Capabilities and Template, the target's values, and Target (its
name, "" for the single target). Call with (dict "root" $ "name" NAME).
As YAML would lose the Release object, callers build it themselves:
  $ctx := dict "Values" (include "sauve.targetValues" ...) | fromYaml) "Release" $.Release ...
sauve.forTargets does that once for every template that needs it.
*/}}

{{/* base with over merged in: maps recursively, anything else replaced. */}}
{{- define "sauve.deepMerge" -}}
{{- $out := deepCopy .base -}}
{{- range $k, $v := .over -}}
{{- $cur := index $out $k -}}
{{- if and (kindIs "map" $v) (kindIs "map" $cur) -}}
{{- $_ := set $out $k (include "sauve.deepMerge" (dict "base" $cur "over" $v) | fromYaml) -}}
{{- else -}}
{{- $_ := set $out $k $v -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* chart label value: NAME-VERSION, "+" is not allowed in a label. */}}
{{- define "sauve.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select this release's pods: stable across upgrades. */}}
{{- define "sauve.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sauve.name" . }}
app.kubernetes.io/instance: {{ .Release.Name | trunc 63 | trimSuffix "-" | quote }}
{{- end -}}

{{/*
Every resource's labels. Call with (dict "root" $ "component" "backup"); the
component is optional.
*/}}
{{- define "sauve.labels" -}}
{{- $root := .root -}}
helm.sh/chart: {{ include "sauve.chart" $root }}
{{ include "sauve.selectorLabels" $root }}
app.kubernetes.io/version: {{ include "sauve.imageTag" $root | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/part-of: sauve
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- with get $root "Target" }}
sauve/target: {{ . | quote }}
{{- end }}
{{- range $k, $v := omit ($root.Values.commonLabels | default dict) "helm.sh/chart" "app.kubernetes.io/name" "app.kubernetes.io/instance" "app.kubernetes.io/version" "app.kubernetes.io/managed-by" "app.kubernetes.io/part-of" "app.kubernetes.io/component" "sauve/target" }}
{{ $k }}: {{ $v | quote }}
{{- end }}
{{- end -}}

{{/*
The annotations block of an object's metadata: commonAnnotations, with
"extra" (a dict) over them; nothing when both are empty.
Call with (dict "root" $ "extra" DICT).
*/}}
{{- define "sauve.annotations" -}}
{{- with merge (dict) (.extra | default dict) (.root.Values.commonAnnotations | default dict) }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "sauve.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "sauve.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "sauve.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag -}}
{{- end -}}

{{- define "sauve.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (include "sauve.imageTag" .) -}}
{{- end -}}
{{- end -}}

{{/*
The credentials sauve reads from files: value key -> file name under
/run/secrets/sauve (also the key in the Secret the chart creates) and the
variable that tells sauve where the file is. The one table of them.
*/}}
{{- define "sauve.credentialTable" -}}
pgPassword: {file: pgpassword, env: PGPASSWORD_FILE}
awsAccessKeyId: {file: aws-access-key-id, env: AWS_ACCESS_KEY_ID_FILE}
awsSecretAccessKey: {file: aws-secret-access-key, env: AWS_SECRET_ACCESS_KEY_FILE}
awsSessionToken: {file: aws-session-token, env: AWS_SESSION_TOKEN_FILE}
sseCustomerKey: {file: sse-c-key, env: SAUVE_S3_SSE_C_KEY_FILE}
notifyUrl: {file: notify-url, env: SAUVE_NOTIFY_URL_FILE}
pushgatewayUrl: {file: pushgateway-url, env: SAUVE_PUSHGATEWAY_URL_FILE}
healthcheckUrl: {file: healthcheck-url, env: SAUVE_HEALTHCHECK_URL_FILE}
redisUrl: {file: redis-url, env: SAUVE_REDIS_URL_FILE}
redisPassword: {file: redis-password, env: SAUVE_REDIS_PASSWORD_FILE}
{{- end -}}

{{/*
"true" when the target backs up Redis: config.redis.url, or the URL as a
credential (secret.values.redisUrl / secret.keys.redisUrl); "" otherwise.
*/}}
{{- define "sauve.redisOn" -}}
{{- $used := include "sauve.usedCredentials" . | fromYaml -}}
{{- if or ((.Values.config.redis | default dict).url) (hasKey $used "redisUrl") }}true{{ end -}}
{{- end -}}

{{/*
The TLS files of Redis from config.redis.tls.existingSecret, as YAML:
[{key: KEY in the Secret, file: name under /run/secrets/sauve-redis-tls,
env: the variable naming it}]; empty without the Secret or without Redis.
*/}}
{{- define "sauve.redisTlsFiles" -}}
{{- $tls := (.Values.config.redis | default dict).tls | default dict -}}
{{- $out := list -}}
{{- if and $tls.existingSecret (include "sauve.redisOn" .) -}}
{{- with $tls.caKey }}{{ $out = append $out (dict "key" . "file" "ca.crt" "env" "SAUVE_REDIS_TLS_CA_FILE") }}{{ end -}}
{{- with $tls.certKey }}{{ $out = append $out (dict "key" . "file" "tls.crt" "env" "SAUVE_REDIS_TLS_CERT_FILE") }}{{ end -}}
{{- with $tls.keyKey }}{{ $out = append $out (dict "key" . "file" "tls.key" "env" "SAUVE_REDIS_TLS_KEY_FILE") }}{{ end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* The directory trees of the target (config.files.trees), as a YAML list. */}}
{{- define "sauve.fileTrees" -}}
{{- toYaml ((.Values.config.files | default dict).trees | default list) -}}
{{- end -}}

{{/*
sauve's config.yaml of the target: config without the chart-only keys
(redis.tls, files.affinity), each tree of files.trees as sauve's NAME=PATH,
compacted (sauve.compactConfig).
*/}}
{{- define "sauve.sauveConfig" -}}
{{- $c := deepCopy .Values.config -}}
{{- $_ := set $c "redis" (omit ($c.redis | default dict) "tls") -}}
{{- $files := $c.files | default dict -}}
{{- $trees := list -}}
{{- range $files.trees | default list -}}
{{- $trees = append $trees (printf "%s=%s" .name .path) -}}
{{- end -}}
{{- $_ := set $c "files" (set (omit $files "affinity" "trees") "trees" $trees) -}}
{{- include "sauve.compactConfig" $c -}}
{{- end -}}

{{/*
The credentials in use, as YAML: value key -> key in the Secret. With
existingSecret, those with a key in secret.keys; otherwise those with a value
in secret.values (stored under their file name).
*/}}
{{- define "sauve.usedCredentials" -}}
{{- $used := dict -}}
{{- range $name, $c := include "sauve.credentialTable" . | fromYaml -}}
{{- if $.Values.secret.existingSecret -}}
{{- with index $.Values.secret.keys $name -}}
{{- $_ := set $used $name . -}}
{{- end -}}
{{- else if index $.Values.secret.values $name -}}
{{- $_ := set $used $name $c.file -}}
{{- end -}}
{{- end -}}
{{- toYaml $used -}}
{{- end -}}

{{/*
The Secret of the restore role's password: restore.secret.existingSecret, or
the one the chart makes from restore.secret.pgPassword; "" when neither (the
restore Job then uses the backup role's credentials).
*/}}
{{- define "sauve.restoreSecretName" -}}
{{- $rs := .Values.restore.secret | default dict -}}
{{- if $rs.existingSecret -}}
{{- $rs.existingSecret -}}
{{- else if $rs.pgPassword -}}
{{- printf "%s-restore" (include "sauve.cronJobName" .) -}}
{{- end -}}
{{- end -}}

{{/* The key of the restore role's password in that Secret. */}}
{{- define "sauve.restoreSecretKey" -}}
{{- $rs := .Values.restore.secret | default dict -}}
{{- if $rs.existingSecret -}}
{{- default "pgpassword" $rs.key -}}
{{- else -}}
pgpassword
{{- end -}}
{{- end -}}

{{/*
The restore Job template's Job name: up to 36 characters of the CronJob's
name, "-restore-" and the restore id the user gives (@ID@, at most 18
characters: a Job name has at most 63).
*/}}
{{- define "sauve.restoreJobName" -}}
{{- printf "%s-restore-@ID@" (include "sauve.truncName" (dict "name" (include "sauve.cronJobName" .) "max" 36)) -}}
{{- end -}}

{{/* The ConfigMap holding the restore Job template. */}}
{{- define "sauve.restoreTemplateName" -}}
{{- printf "%s-restore" (include "sauve.cronJobName" .) -}}
{{- end -}}

{{/*
The manual backup Job's name prefix, for `kubectl create job --from=cronjob`:
40 characters leave room for "-manual-" and a 14-digit date.
*/}}
{{- define "sauve.manualJobPrefix" -}}
{{- include "sauve.truncName" (dict "name" (include "sauve.cronJobName" .) "max" 40) -}}-manual
{{- end -}}

{{/*
The drill CronJob's name: the backup CronJob's with "-drill", cut to 52
characters as that one is.
*/}}
{{- define "sauve.drillCronJobName" -}}
{{- include "sauve.truncName" (dict "name" (printf "%s-drill" (include "sauve.cronJobName" .)) "max" 52) -}}
{{- end -}}

{{/* The manual drill Job's name prefix (as sauve.manualJobPrefix). */}}
{{- define "sauve.drillManualJobPrefix" -}}
{{- include "sauve.truncName" (dict "name" (include "sauve.drillCronJobName" .) "max" 40) -}}-manual
{{- end -}}

{{/*
"true" when the target runs restore drills (drill.enabled); "" otherwise.
Whether it may (a scratch server given) is sauve.validateDrill's to say.
*/}}
{{- define "sauve.drillOn" -}}
{{- if (.Values.drill | default dict).enabled }}true{{ end -}}
{{- end -}}

{{/*
"true" when the target backs up PostgreSQL: config.pg.host, or neither
Redis nor a tree (a target of nothing but PGHOST from extraEnv).
*/}}
{{- define "sauve.pgOn" -}}
{{- if or .Values.config.pg.host (not (or (include "sauve.redisOn" .) (include "sauve.fileTrees" . | fromYamlArray))) }}true{{ end -}}
{{- end -}}

{{/*
The Secret of the scratch role's password: drill.scratch.secret.existingSecret,
or the one the chart makes from its pgPassword (NAME-drill); "" for neither.
*/}}
{{- define "sauve.drillSecretName" -}}
{{- $s := ((.Values.drill | default dict).scratch | default dict).secret | default dict -}}
{{- if $s.existingSecret -}}
{{- $s.existingSecret -}}
{{- else if $s.pgPassword -}}
{{- printf "%s-drill" (include "sauve.cronJobName" .) -}}
{{- end -}}
{{- end -}}

{{/* The key of the scratch role's password in that Secret. */}}
{{- define "sauve.drillSecretKey" -}}
{{- $s := ((.Values.drill | default dict).scratch | default dict).secret | default dict -}}
{{- if $s.existingSecret -}}
{{- default "pgpassword" $s.key -}}
{{- else -}}
pgpassword
{{- end -}}
{{- end -}}

{{/*
Checks of a target's drill (its context), when enabled: a drill restores
into a scratch server it must be told, never config.pg's by default.
*/}}
{{- define "sauve.validateDrill" -}}
{{- $d := .Values.drill | default dict -}}
{{- $sc := $d.scratch | default dict -}}
{{- /* A target's drill is its entry's merged over the top level: the
message names the target, the keys are the same in both places. */ -}}
{{- $where := "drill" -}}
{{- with get . "Target" }}{{ $where = printf "targets.%s: drill" . }}{{ end -}}
{{- if include "sauve.pgOn" . -}}
{{- if not $sc.host -}}
{{- fail (printf "%s.enabled needs drill.scratch.host: the throwaway PostgreSQL server the drill restores into (never the production one)" $where) -}}
{{- end -}}
{{- if not $sc.user -}}
{{- fail (printf "%s.enabled needs drill.scratch.user: the role it connects to the scratch server as (CREATEDB, nothing else)" $where) -}}
{{- end -}}
{{- end -}}
{{- $ss := $sc.secret | default dict -}}
{{- if and $ss.existingSecret $ss.pgPassword -}}
{{- fail (printf "%s.scratch.secret.pgPassword is set together with drill.scratch.secret.existingSecret %q: put the password in that Secret (key drill.scratch.secret.key)" $where $ss.existingSecret) -}}
{{- end -}}
{{- if and (include "sauve.ageEncrypted" .) (not ((.Values.restore.ageIdentity | default dict).existingSecret)) -}}
{{- fail (printf "%s.enabled with encrypted backups (config.age) needs restore.ageIdentity.existingSecret: the drill opens the sets with that identity" $where) -}}
{{- end -}}
{{- end -}}

{{- define "sauve.secretName" -}}
{{- default (include "sauve.cronJobName" .) .Values.secret.existingSecret -}}
{{- end -}}

{{/*
The time zone of retention's calendar periods: retentionTimeZone, else the
schedule's. Empty for UTC, sauve's default, which needs no zone database.
*/}}
{{- define "sauve.retentionTimeZone" -}}
{{- $tz := default .Values.timeZone .Values.retentionTimeZone -}}
{{- if not (has $tz (list "" "UTC" "Etc/UTC" "Etc/UCT" "UCT" "Zulu" "Etc/Zulu" "Universal" "Etc/Universal")) -}}
{{- $tz -}}
{{- end -}}
{{- end -}}

{{/*
sauve's YAML configuration: config without its empty strings, empty lists and
empty maps, so that sauve's own default applies to what is not set. Numbers,
booleans (false included) and zero are kept: `keep.last: 0` is a rule.
Recursive: call with a map.
*/}}
{{- define "sauve.compactConfig" -}}
{{- $out := dict -}}
{{- range $k, $v := . -}}
{{- if kindIs "map" $v -}}
{{- $sub := include "sauve.compactConfig" $v | fromYaml -}}
{{- if $sub -}}
{{- $_ := set $out $k $sub -}}
{{- end -}}
{{- else if or (kindIs "bool" $v) (kindIs "float64" $v) (kindIs "int" $v) (kindIs "int64" $v) -}}
{{- $_ := set $out $k $v -}}
{{- else if $v -}}
{{- $_ := set $out $k $v -}}
{{- end -}}
{{- end -}}
{{- if $out -}}
{{- toYaml $out -}}
{{- end -}}
{{- end -}}

{{/*
"true" when the backups are encrypted with age: config.age names recipients
(in the values or a file), or extraEnv sets them; "" otherwise.
*/}}
{{- define "sauve.ageEncrypted" -}}
{{- $a := .Values.config.age | default dict -}}
{{- $on := or $a.recipients $a.recipients_file -}}
{{- range .Values.extraEnv -}}
{{- if has .name (list "SAUVE_AGE_RECIPIENTS" "SAUVE_AGE_RECIPIENTS_FILE") -}}
{{- $on = true -}}
{{- end -}}
{{- end -}}
{{- if $on }}true{{ end -}}
{{- end -}}

{{/*
Checks of what the schema cannot say; `helm install` stops with the message.
*/}}
{{- define "sauve.validateRelease" -}}
{{- range $k, $_ := .Values.podLabels -}}
{{- if has $k (list "app.kubernetes.io/name" "app.kubernetes.io/instance" "app.kubernetes.io/component" "sauve/target") -}}
{{- fail (printf "podLabels sets %s, a label the chart selects its pods by (NetworkPolicy, kubectl -l): remove it" $k) -}}
{{- end -}}
{{- end -}}
{{- range $k, $_ := merge (dict) (.Values.commonLabels | default dict) (.Values.cronJobLabels | default dict) -}}
{{- if or (hasPrefix "app.kubernetes.io/" $k) (eq $k "helm.sh/chart" "sauve/target") -}}
{{- fail (printf "commonLabels or cronJobLabels sets %s, a label of the chart's own: remove it" $k) -}}
{{- end -}}
{{- end -}}
{{- if (.Values.restore | default dict).enabled -}}
{{- fail "restore.enabled was removed (chart 0.2.0): a release never runs a restore. Unset it (helm upgrade without --reuse-values, or --set restore.enabled=null), then restore with the Job template the release ships: helm get notes RELEASE prints the kubectl command" -}}
{{- end -}}
{{- end -}}

{{/* Checks of one target's values (its context). */}}
{{- define "sauve.validate" -}}
{{- $s := .Values.secret -}}
{{- if $s.existingSecret -}}
{{- range $name, $v := $s.values -}}
{{- if $v -}}
{{- fail (printf "secret.values.%s is set together with secret.existingSecret %q: put the credential in that Secret and name its key in secret.keys.%s" $name $s.existingSecret $name) -}}
{{- end -}}
{{- end -}}
{{- if not (include "sauve.usedCredentials" . | fromYaml) -}}
{{- fail (printf "secret.existingSecret %q is set but secret.keys names none of its keys (e.g. secret.keys.pgPassword: password)" $s.existingSecret) -}}
{{- end -}}
{{- end -}}
{{- $used := include "sauve.usedCredentials" . | fromYaml -}}
{{- if ne (hasKey $used "awsAccessKeyId") (hasKey $used "awsSecretAccessKey") -}}
{{- fail "S3 static keys come in pairs: set both awsAccessKeyId and awsSecretAccessKey (in secret.values or secret.keys), or neither for IRSA / Pod Identity" -}}
{{- end -}}
{{- if and (hasKey $used "awsSessionToken") (not (hasKey $used "awsAccessKeyId")) -}}
{{- fail "awsSessionToken goes with static keys: set awsAccessKeyId and awsSecretAccessKey too" -}}
{{- end -}}
{{- if and (hasKey $used "sseCustomerKey") (ne (default "none" .Values.config.s3.sse) "none") -}}
{{- fail "an SSE-C key (sseCustomerKey) excludes config.s3.sse: set config.s3.sse to none" -}}
{{- end -}}
{{- range .Values.extraEnv -}}
{{- if eq .name "SAUVE_AGE_IDENTITY_FILE" -}}
{{- fail "extraEnv sets SAUVE_AGE_IDENTITY_FILE, which would reach every pod, the backups and helm test included: give the identity to restore Jobs only, with restore.ageIdentity.existingSecret" -}}
{{- end -}}
{{- end -}}
{{- $rs := (.Values.restore | default dict).secret | default dict -}}
{{- if and $rs.existingSecret $rs.pgPassword -}}
{{- fail (printf "restore.secret.pgPassword is set together with restore.secret.existingSecret %q: put the password in that Secret (key restore.secret.key)" $rs.existingSecret) -}}
{{- end -}}
{{- $redis := .Values.config.redis | default dict -}}
{{- if and $redis.url (hasKey $used "redisUrl") -}}
{{- fail "config.redis.url and the redisUrl credential are the same setting: use one (the credential when the URL holds a password)" -}}
{{- end -}}
{{- if and (hasKey $used "redisPassword") (not (include "sauve.redisOn" .)) -}}
{{- fail "a redisPassword credential without a Redis: set config.redis.url (or the redisUrl credential)" -}}
{{- end -}}
{{- $tls := $redis.tls | default dict -}}
{{- if and $tls.existingSecret (ne (empty $tls.certKey) (empty $tls.keyKey)) -}}
{{- fail "config.redis.tls: a client certificate needs its key: set both certKey and keyKey, or neither" -}}
{{- end -}}
{{- $seen := dict -}}
{{- range (.Values.config.files | default dict).trees | default list -}}
{{- if hasKey $seen .name -}}
{{- fail (printf "config.files.trees: the tree name %s is given twice" .name) -}}
{{- end -}}
{{- if hasKey $seen (printf "path:%s" .path) -}}
{{- fail (printf "config.files.trees: the path %s is given twice" .path) -}}
{{- end -}}
{{- $_ := set $seen .name true -}}
{{- $_ := set $seen (printf "path:%s" .path) true -}}
{{- end -}}
{{- if and (hasKey $used "sseCustomerKey") .Values.config.s3.sse_c_key_file -}}
{{- fail "config.s3.sse_c_key_file and the sseCustomerKey credential are the same setting: use one" -}}
{{- end -}}
{{- end -}}

{{/*
NOTES.txt's commands for a backup now and a restore, one kubectl command
each: the manual backup is a Job made from the CronJob, the restore a Job
made from the release's restore template with the id, source, set and target
filled in. Nothing of the release runs either.
*/}}
{{- define "sauve.runCommands" -}}
{{- $ns := .Release.Namespace -}}
{{- $cj := include "sauve.cronJobName" . -}}
{{- $dbs := .Values.config.pg.databases | default list -}}
{{- if kindIs "string" $dbs -}}
{{- $dbs = compact (splitList "," ($dbs | nospace)) -}}
{{- end -}}
{{- $db := "DB" -}}
{{- if and $dbs (ne (first $dbs) "all") -}}
{{- $db = first $dbs -}}
{{- end -}}
{{- $identity := .Values.restore.ageIdentity | default dict -}}
Run a backup now ({{ $cj }}), and follow it:
  job={{ include "sauve.manualJobPrefix" . }}-$(date +%Y%m%d%H%M%S)
  kubectl create job -n {{ $ns }} --from=cronjob/{{ $cj }} "$job"
  kubectl logs -n {{ $ns }} -f "job/$job" --pod-running-timeout=5m

{{ if and (include "sauve.ageEncrypted" .) (not $identity.existingSecret) -}}
Restores of {{ $cj }}: the backups are encrypted with age, and the release
has no restore template until it knows the identity's Secret:
  kubectl create secret generic sauve-age-identity -n {{ $ns }} --from-file={{ default "identity.txt" $identity.key }}=PATH
  helm upgrade {{ .Release.Name }} <chart> -n {{ $ns }} --reuse-values --set restore.ageIdentity.existingSecret=sauve-age-identity
{{- else -}}
Restore ({{ $cj }}): choose a restore id (a-z, 0-9 and '-', at most 18
characters; the API server refuses a second Job of the same id), the source
(postgres:DB or postgres:globals), the set (`sauve list`, or latest) and a
target database; first restore into a new one to look at it:
  kubectl get configmap -n {{ $ns }} {{ include "sauve.restoreTemplateName" . }} -o jsonpath='{.data.restore}' \
    | sed -e 's/@ID@/1/g' -e 's/@SOURCE@/postgres:{{ $db }}/g' -e 's/@SET@/latest/g' -e 's/@TARGET@/{{ $db }}_check/g' \
    | kubectl create -n {{ $ns }} -f -
  kubectl logs -n {{ $ns }} -f job/{{ include "sauve.restoreJobName" . | replace "@ID@" "1" }} --pod-running-timeout=5m
To replace a database that is not empty (after a safety backup of it), take
'{.data.restore-clean}' instead of '{.data.restore}'.
{{- $get := printf "kubectl get configmap -n %s %s -o jsonpath=" $ns (include "sauve.restoreTemplateName" .) }}
{{- $create := printf "kubectl create -n %s -f -" $ns }}
{{- range include "sauve.fileTrees" . | fromYamlArray }}

Restore the tree {{ .name }} ({{ .path }}, claim {{ .claimName }}) in place, after a
safety backup of it: scale the application down first (its ReadWriteOnce
volume attaches to one node; nothing may write the tree meanwhile), then
  {{ $get }}'{.data.restore-files-{{ .name }}-clean}' \
    | sed -e 's/@ID@/2/g' -e 's/@SET@/latest/g' | {{ $create }}
and scale it up again once the Job completed.
{{- end }}
{{- if include "sauve.redisOn" . }}
{{- $rr := .Values.restore.redis | default dict }}

Restore Redis into the running server, key by key (refused when it holds
keys; '{.data.restore-redis-online-clean}' empties it first, after a safety
backup of it):
  {{ $get }}'{.data.restore-redis-online}' \
    | sed -e 's/@ID@/3/g' -e 's/@SET@/latest/g' | {{ $create }}
{{- if $rr.claimName }}
Or write its RDB file (README "Restoring Redis"): scale Redis to 0, then
  {{ $get }}'{.data.restore-redis-file-clean}' \
    | sed -e 's/@ID@/4/g' -e 's/@SET@/latest/g' | {{ $create }}
and scale it back to 1 (with appendonly yes, see the README first).
{{- end }}
{{- end }}
{{- end }}
{{- end -}}
