{{/*
The pod every sauve run uses: the CronJob's backups, the restore Job template
and the `helm test` check differ only in their arguments and component label;
the restore Job (and the drill) alone gets the age identity (restore.ageIdentity) and the
restore role's credentials (restore.pgUser, restore.secret) in place of the
backup role's password.
Call with (dict "root" $ "args" (list "backup") "component" "backup"), plus
"restore" true for the restore Job; podMetadata also takes "annotations",
merged over podAnnotations.
The directory trees (config.files.trees) are mounted read-only in the
backups and the check, with the pod affinity to the application's pod
(config.files.affinity); a restore Job mounts none of them, except "tree"
(a tree of config.files.trees), mounted read-write for its restore, and
"redisFile" true, Redis' data volume (restore.redis) mounted read-write,
the pod running as Redis' user.
"drill" true is the drill CronJob's pod: the age identity as a restore's,
the scratch server (drill.scratch) as libpq's PG* over config.pg with its
own password file, a writable emptyDir for SAUVE_DRILL_DIR, and none of
the backup role's password, Redis' credentials, the healthcheck URL or the
trees (a drill reads only the storage, and writes only the scratch server
and that directory).
*/}}

{{- define "sauve.podMetadata" -}}
{{- $root := .root -}}
{{- /* The chart's labels win over podLabels (sauve.validate refuses the
selector ones there): a NetworkPolicy selects the pods by them. */}}
labels:
  {{- merge (include "sauve.labels" (dict "root" $root "component" .component) | fromYaml) ($root.Values.podLabels | default dict) | toYaml | nindent 2 }}
{{- with merge (dict) (.annotations | default dict) ($root.Values.podAnnotations | default dict) ($root.Values.commonAnnotations | default dict) }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "sauve.podSpec" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $used := include "sauve.usedCredentials" $root | fromYaml -}}
{{- $table := include "sauve.credentialTable" $root | fromYaml -}}
{{- $tz := include "sauve.retentionTimeZone" $root -}}
{{- /* The Secret holding the age identity: the restore Job's only. */ -}}
{{- $identity := "" -}}
{{- /* (absent from the values of a release made by an older chart, under --reuse-values) */ -}}
{{- $ageIdentity := $v.restore.ageIdentity | default dict -}}
{{- /* The restore role's password (restore.secret): the restore Job's only,
replacing the backup role's. */ -}}
{{- $restorePw := "" -}}
{{- $restoreUser := "" -}}
{{- $drill := dict -}}
{{- $drillPw := "" -}}
{{- if .drill -}}
{{- $drill = $v.drill -}}
{{- $identity = $ageIdentity.existingSecret -}}
{{- $drillPw = include "sauve.drillSecretName" $root -}}
{{- /* The backup role's password would be sent to the scratch server. */ -}}
{{- $used = omit $used "pgPassword" "healthcheckUrl" "redisUrl" "redisPassword" -}}
{{- end -}}
{{- if .restore -}}
{{- $identity = $ageIdentity.existingSecret -}}
{{- $restorePw = include "sauve.restoreSecretName" $root -}}
{{- $restoreUser = $v.restore.pgUser -}}
{{- if $restorePw -}}
{{- $used = omit $used "pgPassword" -}}
{{- end -}}
{{- end -}}
{{- $redisTls := list -}}
{{- if not .drill -}}
{{- $redisTls = include "sauve.redisTlsFiles" $root | fromYamlArray -}}
{{- end -}}
{{- /* The trees mounted, and how: read-only in the backups and the check,
one read-write in its restore Job, none in the other restore Jobs. */ -}}
{{- $trees := list -}}
{{- $treesReadOnly := true -}}
{{- if .tree -}}
{{- $trees = list .tree -}}
{{- $treesReadOnly = false -}}
{{- else if not (or .restore .drill) -}}
{{- $trees = include "sauve.fileTrees" $root | fromYamlArray -}}
{{- end -}}
{{- /* ReadWriteOnce volumes attach to one node: the backups and the check
run where the application's pod runs (config.files.affinity). Not the
restore Jobs: the application is scaled down while they run. */ -}}
{{- $affinity := deepCopy ($v.affinity | default dict) -}}
{{- $sel := (($v.config.files | default dict).affinity | default dict) -}}
{{- if and $trees $treesReadOnly (or $sel.matchLabels $sel.matchExpressions) -}}
{{- $ls := dict -}}
{{- with $sel.matchLabels }}{{ $_ := set $ls "matchLabels" . }}{{ end -}}
{{- with $sel.matchExpressions }}{{ $_ := set $ls "matchExpressions" . }}{{ end -}}
{{- $pa := $affinity.podAffinity | default dict -}}
{{- $req := $pa.requiredDuringSchedulingIgnoredDuringExecution | default list -}}
{{- $_ := set $pa "requiredDuringSchedulingIgnoredDuringExecution" (append $req (dict "labelSelector" $ls "topologyKey" "kubernetes.io/hostname")) -}}
{{- $_ := set $affinity "podAffinity" $pa -}}
{{- end -}}
{{- /* The restore of Redis' file runs as the user of the Redis image
(restore.redis), so that the file it writes is the server's. */ -}}
{{- $psc := $v.podSecurityContext | default dict -}}
{{- $csc := $v.securityContext | default dict -}}
{{- $redisData := dict -}}
{{- $runAs := dict -}}
{{- if .redisFile -}}
{{- $redisData = $v.restore.redis -}}
{{- $runAs = $redisData -}}
{{- else if .tree -}}
{{- /* The restore of a tree: as the application's user (restore.files),
so that what it writes is the application's. */ -}}
{{- $runAs = $v.restore.files | default dict -}}
{{- end -}}
{{- range $k := list "runAsUser" "runAsGroup" "fsGroup" -}}
{{- if not (kindIs "invalid" (index $runAs $k)) -}}
{{- $psc = set (deepCopy $psc) $k (index $runAs $k) -}}
{{- if ne $k "fsGroup" -}}
{{- $csc = set (deepCopy $csc) $k (index $runAs $k) -}}
{{- end -}}
{{- end -}}
{{- end -}}
# A failed run is never restarted in place: the Job makes a new pod, and
# podFailurePolicy (which requires Never) decides from the exit code.
restartPolicy: Never
serviceAccountName: {{ include "sauve.serviceAccountName" $root }}
# sauve never talks to the Kubernetes API. (IRSA and Pod Identity mount
# their own token.)
automountServiceAccountToken: false
# Otherwise Kubernetes injects SAUVE_SERVICE_HOST and the like for a Service
# named sauve, which sauve warns about as unknown settings.
enableServiceLinks: false
# Between SIGTERM (deadline, eviction, drain) and SIGKILL: room for sauve to
# remove what an interrupted run stored, then notify.
terminationGracePeriodSeconds: {{ int64 $v.terminationGracePeriodSeconds }}
{{- with $v.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $v.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- /* openshift: the restricted SCC assigns the uid, gid and fsGroup of
the namespace's range and refuses fixed ones. */}}
{{- with $v.openshift | ternary (omit $psc "runAsUser" "runAsGroup" "fsGroup") $psc }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if or $v.sidecars $v.extraInitContainers }}
initContainers:
  {{- /* Sidecars (a cloud SQL proxy, ...) are native sidecars: init
  containers that keep running (restartPolicy Always, Kubernetes 1.29+), so
  the Job completes when sauve exits. They start first: the extra init
  containers may use them. */}}
  {{- range $v.sidecars }}
  - {{ merge (dict "restartPolicy" "Always") . | toYaml | nindent 4 | trim }}
  {{- end }}
  {{- with $v.extraInitContainers }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}
containers:
  - name: sauve
    image: {{ include "sauve.image" $root | quote }}
    imagePullPolicy: {{ $v.image.pullPolicy }}
    command: ["/usr/local/bin/sauve"]
    args:
      {{- toYaml .args | nindent 6 }}
    env:
      - name: SAUVE_CONFIG
        value: /etc/sauve/config.yaml
      {{- if get $root "Target" }}
      # The target's own series (targets.NAME.config.name, else NAME).
      - name: SAUVE_NAME
        value: {{ $v.config.name | quote }}
      {{- end }}
      {{- with $tz }}
      - name: TZ
        value: {{ . | quote }}
      {{- end }}
      {{- range $name, $key := $used }}
      - name: {{ (index $table $name).env }}
        value: /run/secrets/sauve/{{ (index $table $name).file }}
      {{- end }}
      {{- with $restoreUser }}
      # The restore role (restore.pgUser), over config.pg.user.
      - name: PGUSER
        value: {{ . | quote }}
      {{- end }}
      {{- if $restorePw }}
      - name: PGPASSWORD_FILE
        value: /run/secrets/sauve-restore/pgpassword
      {{- end }}
      {{- if .drill }}
      {{- with $drill.scratch }}
      # The scratch server (drill.scratch), over config.pg: the drill creates,
      # restores into and drops its databases there.
      {{- with .host }}
      - name: PGHOST
        value: {{ . | quote }}
      {{- end }}
      {{- with .port }}
      - name: PGPORT
        value: {{ int64 . | quote }}
      {{- end }}
      {{- with .user }}
      - name: PGUSER
        value: {{ . | quote }}
      {{- end }}
      {{- with .sslmode }}
      - name: PGSSLMODE
        value: {{ . | quote }}
      {{- end }}
      {{- end }}
      {{- if $drillPw }}
      - name: PGPASSWORD_FILE
        value: /run/secrets/sauve-drill/pgpassword
      {{- end }}
      # The writable scratch directory of Redis RDBs and file trees.
      - name: SAUVE_DRILL_DIR
        value: /var/lib/sauve/drill
      {{- end }}
      {{- if $identity }}
      - name: SAUVE_AGE_IDENTITY_FILE
        value: /run/secrets/sauve-age/identity.txt
      {{- end }}
      {{- range $redisTls }}
      - name: {{ .env }}
        value: /run/secrets/sauve-redis-tls/{{ .file }}
      {{- end }}
      {{- with $v.extraEnv }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    {{- with $v.extraEnvFrom }}
    # extraEnvFrom: variables from whole ConfigMaps or Secrets; the env above wins.
    envFrom:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with (and .drill $drill.resources) | default $v.resources }}
    resources:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with $v.openshift | ternary (omit $csc "runAsUser" "runAsGroup") $csc }}
    securityContext:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    # sauve writes its one-line summary there; kubectl describe pod shows it.
    terminationMessagePath: /dev/termination-log
    terminationMessagePolicy: FallbackToLogsOnError
    volumeMounts:
      - name: config
        mountPath: /etc/sauve
        readOnly: true
      {{- if $used }}
      - name: credentials
        mountPath: /run/secrets/sauve
        readOnly: true
      {{- end }}
      {{- if $restorePw }}
      - name: restore-credentials
        mountPath: /run/secrets/sauve-restore
        readOnly: true
      {{- end }}
      {{- if $drillPw }}
      - name: drill-credentials
        mountPath: /run/secrets/sauve-drill
        readOnly: true
      {{- end }}
      {{- if $identity }}
      - name: age-identity
        mountPath: /run/secrets/sauve-age
        readOnly: true
      {{- end }}
      {{- if .drill }}
      # SAUVE_DRILL_DIR: writable, the root filesystem is not.
      - name: drill
        mountPath: /var/lib/sauve/drill
      {{- end }}
      {{- if $redisTls }}
      - name: redis-tls
        mountPath: /run/secrets/sauve-redis-tls
        readOnly: true
      {{- end }}
      - name: tmp
        mountPath: /tmp
      {{- range $trees }}
      # The tree {{ .name }} ({{ if $treesReadOnly }}read-only{{ else }}read-write: this Job restores it{{ end }}).
      - name: files-{{ .name }}
        mountPath: {{ .path }}
        {{- with .subPath }}
        subPath: {{ . }}
        {{- end }}
        readOnly: {{ $treesReadOnly }}
      {{- end }}
      {{- if .redisFile }}
      # Redis' data volume, for the restore of its file.
      - name: redis-data
        mountPath: {{ $redisData.mountPath }}
        readOnly: false
      {{- end }}
      {{- range $v.extraVolumes }}
      - name: {{ .name }}
        mountPath: {{ .mountPath }}
        {{- with .subPath }}
        subPath: {{ . }}
        {{- end }}
        readOnly: {{ ne .readOnly false }}
      {{- end }}
volumes:
  - name: config
    configMap:
      name: {{ include "sauve.cronJobName" $root }}
  {{- if $used }}
  - name: credentials
    secret:
      secretName: {{ include "sauve.secretName" $root }}
      # 0440: readable by the pod's fsGroup, nobody else.
      defaultMode: 288
      items:
        {{- range $name, $key := $used }}
        - key: {{ $key | quote }}
          path: {{ (index $table $name).file }}
        {{- end }}
  {{- end }}
  {{- if $restorePw }}
  # The restore role's password (restore.secret), in restore Jobs only.
  - name: restore-credentials
    secret:
      secretName: {{ $restorePw }}
      # 0440: readable by the pod's fsGroup, nobody else.
      defaultMode: 288
      items:
        - key: {{ include "sauve.restoreSecretKey" $root | quote }}
          path: pgpassword
  {{- end }}
  {{- if $drillPw }}
  # The scratch role's password (drill.scratch.secret), in drill pods only.
  - name: drill-credentials
    secret:
      secretName: {{ $drillPw }}
      # 0440: readable by the pod's fsGroup, nobody else.
      defaultMode: 288
      items:
        - key: {{ include "sauve.drillSecretKey" $root | quote }}
          path: pgpassword
  {{- end }}
  {{- if .drill }}
  # Where the drill restores Redis RDBs and file trees while it compares them.
  - name: drill
    emptyDir: {{ if $drill.dirSizeLimit }}{sizeLimit: {{ $drill.dirSizeLimit }}}{{ else }}{}{{ end }}
  {{- end }}
  {{- if $identity }}
  # The age identity (restore.ageIdentity): a Secret created with kubectl,
  # mounted in restore Jobs and drills only.
  - name: age-identity
    secret:
      secretName: {{ $identity }}
      # 0440: readable by the pod's fsGroup, nobody else.
      defaultMode: 288
      items:
        - key: {{ default "identity.txt" $ageIdentity.key | quote }}
          path: identity.txt
  {{- end }}
  {{- with $redisTls }}
  # The TLS files of Redis (config.redis.tls).
  - name: redis-tls
    secret:
      secretName: {{ $v.config.redis.tls.existingSecret }}
      # 0440: readable by the pod's fsGroup, nobody else.
      defaultMode: 288
      items:
        {{- range . }}
        - key: {{ .key | quote }}
          path: {{ .file }}
        {{- end }}
  {{- end }}
  {{- range $trees }}
  - name: files-{{ .name }}
    persistentVolumeClaim:
      claimName: {{ .claimName }}
      readOnly: {{ $treesReadOnly }}
  {{- end }}
  {{- if .redisFile }}
  - name: redis-data
    persistentVolumeClaim:
      claimName: {{ $redisData.claimName }}
      readOnly: false
  {{- end }}
  # The only writable directory; the root filesystem is read-only.
  - name: tmp
    emptyDir: {{ if $v.tmpSizeLimit }}{sizeLimit: {{ $v.tmpSizeLimit }}}{{ else }}{}{{ end }}
  {{- range $v.extraVolumes }}
  - name: {{ .name }}
    {{- if .claimName }}
    persistentVolumeClaim:
      claimName: {{ .claimName }}
      readOnly: {{ ne .readOnly false }}
    {{- else }}
    {{- toYaml (required (printf "extraVolumes %s: set claimName or volume" .name) .volume) | nindent 4 }}
    {{- end }}
  {{- end }}
{{- end -}}

{{/*
The Job spec fields shared by the CronJob's Jobs and the restore Job.
Call with (dict "root" $ "backoffLimit" N "activeDeadlineSeconds" N "ttl" N).
*/}}
{{- define "sauve.jobPolicy" -}}
{{- $pfp := .root.Values.podFailurePolicy -}}
backoffLimit: {{ int64 .backoffLimit }}
{{- with .activeDeadlineSeconds }}
activeDeadlineSeconds: {{ int64 . }}
{{- end }}
{{- if not (kindIs "invalid" .ttl) }}
ttlSecondsAfterFinished: {{ int64 .ttl }}
{{- end }}
{{- if or $pfp.failJobOnExitCodes $pfp.ignoreDisruptions }}
# sauve's exit codes (README, "Exit codes"): fail at once on what a retry
# cannot fix; everything else (75 temporary, 1 failed, 2 partial) counts
# against backoffLimit and is retried.
podFailurePolicy:
  rules:
    {{- if $pfp.ignoreDisruptions }}
    # Eviction, preemption, node drain: retried, not counted.
    - action: Ignore
      onPodConditions:
        - type: DisruptionTarget
          status: "True"
    {{- end }}
    {{- with $pfp.failJobOnExitCodes }}
    {{- /* The API requires the values sorted and unique: sorted here as
    zero-padded strings, whatever order the values give. */}}
    {{- $codes := list }}
    {{- range . }}
    {{- $codes = append $codes (printf "%03d" (int .)) }}
    {{- end }}
    - action: FailJob
      onExitCodes:
        containerName: sauve
        operator: In
        values:
          {{- range $codes | uniq | sortAlpha }}
          - {{ atoi . }}
          {{- end }}
    {{- end }}
{{- end }}
{{- end -}}

{{/*
A restore Job, as the restore template holds it (restore-template.yaml).
Call with (dict "root" $ "args" ARGS), plus "tree" or "redisFile" (sauve.podSpec).
*/}}
{{- define "sauve.restoreJob" -}}
{{- $root := .root -}}
{{- $r := $root.Values.restore -}}
apiVersion: batch/v1
kind: Job
metadata:
  # @ID@: the restore id you choose; a second Job of one id is refused.
  name: {{ include "sauve.restoreJobName" $root }}
  labels:
    {{- include "sauve.labels" (dict "root" $root "component" "restore") | nindent 4 }}
    sauve/restore-id: "@ID@"
  {{- include "sauve.annotations" (dict "root" $root) | nindent 2 }}
spec:
  {{- /* No ttlSecondsAfterFinished: the Job stays, and its id stays taken. */}}
  {{- include "sauve.jobPolicy" (dict "root" $root "backoffLimit" $r.backoffLimit "activeDeadlineSeconds" $r.activeDeadlineSeconds "ttl" nil) | nindent 2 }}
  template:
    metadata:
      {{- include "sauve.podMetadata" (dict "root" $root "component" "restore") | nindent 6 }}
    spec:
      {{- include "sauve.podSpec" (dict "root" $root "args" .args "component" "restore" "restore" true "tree" .tree "redisFile" .redisFile) | nindent 6 }}
{{- end -}}
