// render: a test-only implementation of `helm template` for sauve's chart.
//
// No helm binary can be installed on the build machines, so the deploy tests
// render the chart with this program instead: Go's text/template, the sprig
// function library (the major Helm 3 uses) and the functions Helm adds
// (include, tpl, required, toYaml, fromYaml, toJson, fromJson, fail, lookup),
// with Helm's value handling: values.yaml coalesced with -f files (later
// files win, maps merge, null deletes a key), numbers read as float64 through
// sigs.k8s.io/yaml as Helm reads them, missing keys rendering as nothing.
//
// It is not Helm: no subcharts, no --set, no hooks ordering, no schema
// validation (the tests validate values against values.schema.json with
// `-dump-values` and a JSON-schema validator). Keep the chart inside what
// this supports.
//
// Build (offline, Debian's Go and packages, GOPATH mode):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o build/deploy/render ./tests/deploy/render
//
// Usage:
//
//	render [-f values.yaml]... [-name R] [-namespace NS] [-kube-version v1.32.0]
//	       [-api-versions monitoring.coreos.com/v1]... [-notes | -dump-values] CHART_DIR
//
// Output: every rendered template as YAML documents, each preceded by
// `# Source: CHART/templates/FILE` as helm prints it; -notes prints the
// rendered NOTES.txt instead; -dump-values prints the coalesced values as
// JSON. Errors (a `required` or `fail`, a template error) go to stderr, exit 1.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"sigs.k8s.io/yaml"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// APIVersions answers .Capabilities.APIVersions.Has as Helm's does.
type APIVersions []string

func (a APIVersions) Has(v string) bool {
	for _, x := range a {
		if x == v {
			return true
		}
	}
	return false
}

// KubeVersion is .Capabilities.KubeVersion.
type KubeVersion struct {
	Version    string
	Major      string
	Minor      string
	GitVersion string
}

func (k KubeVersion) String() string { return k.Version }

type Capabilities struct {
	KubeVersion KubeVersion
	APIVersions APIVersions
}

// Files is .Files: the chart's non-template files.
type Files map[string][]byte

func (f Files) Get(name string) string { return string(f[name]) }
func (f Files) GetBytes(name string) []byte {
	return f[name]
}

func readValues(file string) (map[string]interface{}, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	vals := map[string]interface{}{}
	if err := yaml.Unmarshal(data, &vals); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	if vals == nil {
		vals = map[string]interface{}{}
	}
	return vals, nil
}

// coalesce merges src into dst as Helm merges user values into the chart's
// defaults: maps merge key by key, anything else in src replaces, and a null
// in src deletes the key.
func coalesce(dst, src map[string]interface{}) map[string]interface{} {
	for k, sv := range src {
		if sv == nil {
			delete(dst, k)
			continue
		}
		sm, sIsMap := sv.(map[string]interface{})
		dm, dIsMap := dst[k].(map[string]interface{})
		if sIsMap && dIsMap {
			dst[k] = coalesce(dm, sm)
		} else {
			dst[k] = sv
		}
	}
	return dst
}

func toYAML(v interface{}) string {
	data, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(data), "\n")
}

func fromYAML(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := yaml.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromYAMLArray(s string) []interface{} {
	a := []interface{}{}
	if err := yaml.Unmarshal([]byte(s), &a); err != nil {
		a = []interface{}{err.Error()}
	}
	return a
}

func toJSON(v interface{}) string {
	data, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(data)
}

func fromJSON(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

// engine holds the parsed templates; include and tpl need them.
type engine struct {
	t     *template.Template
	depth int
}

func (e *engine) funcs() template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env") // Helm removes these: a chart must not read the renderer's environment
	delete(f, "expandenv")
	f["toYaml"] = toYAML
	f["fromYaml"] = fromYAML
	f["fromYamlArray"] = fromYAMLArray
	f["toJson"] = toJSON
	f["fromJson"] = fromJSON
	f["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return v, errors.New(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return v, errors.New(msg)
		}
		return v, nil
	}
	f["fail"] = func(msg string) (string, error) { return "", errors.New(msg) }
	// Offline there is no cluster to look anything up in: Helm's `helm
	// template` answers lookup with an empty map too.
	f["lookup"] = func(apiVersion, kind, namespace, name string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil
	}
	f["include"] = func(name string, data interface{}) (string, error) {
		if e.depth > 1000 {
			return "", fmt.Errorf("include %q: nested too deeply", name)
		}
		e.depth++
		defer func() { e.depth-- }()
		var buf bytes.Buffer
		if err := e.t.ExecuteTemplate(&buf, name, data); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	f["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := e.t.Clone()
		if err != nil {
			return "", err
		}
		t, err = t.New("tpl").Parse(text)
		if err != nil {
			return "", fmt.Errorf("tpl: %v", err)
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, data); err != nil {
			return "", fmt.Errorf("tpl: %v", err)
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	return f
}

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "render: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	var valueFiles, apiVersions multiFlag
	flag.Var(&valueFiles, "f", "values file (repeatable; later files win)")
	release := flag.String("name", "sauve", "release name")
	namespace := flag.String("namespace", "default", "release namespace")
	kubeVersion := flag.String("kube-version", "v1.32.0", "Kubernetes version of .Capabilities")
	flag.Var(&apiVersions, "api-versions", "extra API version in .Capabilities.APIVersions (repeatable)")
	notes := flag.Bool("notes", false, "print the rendered NOTES.txt only")
	dumpValues := flag.Bool("dump-values", false, "print the coalesced values as JSON and exit")
	flag.Parse()
	if flag.NArg() != 1 {
		die("usage: render [flags] CHART_DIR")
	}
	chartDir := flag.Arg(0)

	chartData, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		die("%v", err)
	}
	var meta map[string]interface{}
	if err := yaml.Unmarshal(chartData, &meta); err != nil {
		die("Chart.yaml: %v", err)
	}
	str := func(k string) string { s, _ := meta[k].(string); return s }
	chartName := str("name")
	if chartName == "" {
		die("Chart.yaml: no name")
	}
	chart := map[string]interface{}{
		"Name": chartName, "Version": str("version"), "AppVersion": str("appVersion"),
		"Description": str("description"), "Type": str("type"), "KubeVersion": str("kubeVersion"),
		"APIVersion": str("apiVersion"), "Home": str("home"),
	}

	values, err := readValues(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		die("%v", err)
	}
	user := map[string]interface{}{}
	for _, f := range valueFiles {
		v, err := readValues(f)
		if err != nil {
			die("%v", err)
		}
		// Between user files, too, later ones win and null deletes.
		user = coalesce(user, v)
	}
	values = coalesce(values, user)
	if *dumpValues {
		out, _ := json.MarshalIndent(values, "", "  ")
		fmt.Println(string(out))
		return
	}

	kv := strings.TrimPrefix(*kubeVersion, "v")
	parts := strings.SplitN(kv, ".", 3)
	if len(parts) < 2 {
		die("-kube-version %q: want vMAJOR.MINOR.PATCH", *kubeVersion)
	}
	caps := Capabilities{
		KubeVersion: KubeVersion{Version: "v" + kv, Major: parts[0], Minor: parts[1], GitVersion: "v" + kv},
		APIVersions: append(APIVersions{"v1", "batch/v1", "networking.k8s.io/v1", "policy/v1"}, apiVersions...),
	}
	if c := str("kubeVersion"); c != "" {
		cmp := sprig.TxtFuncMap()["semverCompare"].(func(string, string) (bool, error))
		ok, err := cmp(c, "v"+kv)
		if err != nil || !ok {
			die("chart requires kubeVersion %s, which is incompatible with Kubernetes v%s", c, kv)
		}
	}

	// Templates, and the other files for .Files.
	files := Files{}
	var templates []string
	err = filepath.Walk(chartDir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(chartDir, p)
		rel = filepath.ToSlash(rel)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.HasPrefix(rel, "templates/") {
			templates = append(templates, rel)
		} else {
			files[rel] = data
		}
		return nil
	})
	if err != nil {
		die("%v", err)
	}
	sort.Strings(templates)

	e := &engine{}
	e.t = template.New("gotpl").Option("missingkey=zero").Funcs(e.funcs())
	for _, rel := range templates {
		data, _ := os.ReadFile(filepath.Join(chartDir, rel))
		if _, err := e.t.New(path.Join(chartName, rel)).Parse(string(data)); err != nil {
			die("%v", err)
		}
	}

	top := map[string]interface{}{
		"Values":       values,
		"Chart":        chart,
		"Capabilities": caps,
		"Files":        files,
		"Release": map[string]interface{}{
			"Name": *release, "Namespace": *namespace, "Service": "Helm",
			"IsInstall": true, "IsUpgrade": false, "Revision": 1,
		},
	}

	var out bytes.Buffer
	for _, rel := range templates {
		base := path.Base(rel)
		if strings.HasPrefix(base, "_") {
			continue
		}
		isNotes := base == "NOTES.txt"
		if isNotes != *notes {
			continue
		}
		name := path.Join(chartName, rel)
		vals := map[string]interface{}{}
		for k, v := range top {
			vals[k] = v
		}
		vals["Template"] = map[string]interface{}{"Name": name, "BasePath": path.Join(chartName, "templates")}
		var buf bytes.Buffer
		if err := e.t.ExecuteTemplate(&buf, name, vals); err != nil {
			die("%v", err)
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if isNotes {
			out.WriteString(text)
			continue
		}
		if strings.TrimSpace(text) == "" {
			continue
		}
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", name, strings.TrimLeft(text, "\n"))
	}
	os.Stdout.Write(out.Bytes())
}
