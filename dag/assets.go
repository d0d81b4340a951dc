package dag

import (
	"fmt"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"
)

// AssetSchedule is `schedule: {assets: [URI, …]}` (a run when every asset
// was updated since the last asset-triggered run, as Airflow) or
// `schedule: {assets: {any: [URI, …]}}` (a run when any was).
type AssetSchedule struct {
	URIs []string
	Any  bool
}

// Outlet is an asset a task updates when it succeeds: `outlets: [URI]` or
// `outlets: [{uri: URI, extra: {key: template}}]`.
type Outlet struct {
	URI string
	// Extra is rendered with the task's context at its success and stored
	// with the asset event; values may be templates.
	Extra map[string]any
}

// Consumes reports whether the DAG is scheduled on assets.
func (d *DAG) Consumes() bool { return d.Assets != nil && len(d.Assets.URIs) > 0 }

// Produced lists the assets the DAG's tasks update, URI → task ids.
func (d *DAG) Produced() map[string][]string {
	out := map[string][]string{}
	for _, t := range d.Tasks {
		for _, o := range t.Outlets {
			out[o.URI] = append(out[o.URI], t.ID)
		}
	}
	return out
}

// assetSchedule reads schedule's mapping form.
func (f *fileParser) assetSchedule(d *DAG, n *yaml.Node) {
	fields := f.fields(n, []string{"assets"})
	e, ok := f.required(n, fields, "assets")
	if !ok {
		return
	}
	s := &AssetSchedule{}
	list := resolve(e.value)
	if list != nil && list.Kind == yaml.MappingNode {
		anyFields := f.fields(list, []string{"any"})
		a, ok := f.required(list, anyFields, "any")
		if !ok {
			return
		}
		s.Any, list = true, resolve(a.value)
	}
	if list == nil || list.Kind != yaml.SequenceNode || len(list.Content) == 0 {
		f.wrongType("schedule.assets", e.value, "a non-empty list of asset URIs, or {any: [URI, …]}")
		return
	}
	seen := map[string]bool{}
	for _, item := range list.Content {
		uri, ok := f.assetURI("schedule.assets", item)
		if !ok {
			continue
		}
		if seen[uri] {
			f.errorf(item, "schedule.assets: %s is listed twice", quoteShort(uri))
			continue
		}
		seen[uri] = true
		s.URIs = append(s.URIs, uri)
	}
	if len(s.URIs) > 0 {
		d.Assets = s
	}
}

// outlets reads a task's outlets.
func (f *fileParser) outlets(t *Task, n *yaml.Node) {
	list := resolve(n)
	if isNull(list) {
		return
	}
	if list.Kind != yaml.SequenceNode {
		f.wrongType("outlets", n, "a list of asset URIs (or {uri, extra} mappings)")
		return
	}
	for _, item := range list.Content {
		r := resolve(item)
		if r != nil && r.Kind == yaml.MappingNode {
			fields := f.fields(r, []string{"uri", "extra"})
			e, ok := f.required(r, fields, "uri")
			if !ok {
				continue
			}
			uri, ok := f.assetURI("outlets.uri", e.value)
			if !ok {
				continue
			}
			o := Outlet{URI: uri}
			if x, ok := fields["extra"]; ok && !isNull(x.value) {
				if m, ok := f.plain("outlets.extra", x.value).(map[string]any); ok {
					o.Extra = m
				} else {
					f.wrongType("outlets.extra", x.value, KindMap.String())
				}
			}
			t.Outlets = append(t.Outlets, o)
			continue
		}
		if uri, ok := f.assetURI("outlets", item); ok {
			t.Outlets = append(t.Outlets, Outlet{URI: uri})
		}
	}
}

// assetURI reads an asset URI: any non-empty string without spaces, such
// as s3://bucket/orders/ or postgres://warehouse/public/orders.
func (f *fileParser) assetURI(key string, n *yaml.Node) (string, bool) {
	s, ok := f.str(key, n)
	if !ok {
		return "", false
	}
	if err := CheckAssetURI(s); err != nil {
		f.errorf(n, "%s: %v", key, err)
		return "", false
	}
	return s, true
}

// maxAssetURI and notInAssetURI bound asset URIs (the API's uri parameter
// says the same).
const (
	maxAssetURI   = 2000
	notInAssetURI = "\"'<>\\^`{|}"
)

// CheckAssetURI says what is wrong with an asset URI, if anything.
func CheckAssetURI(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("an asset URI is empty")
	case len(s) > maxAssetURI:
		return fmt.Errorf("asset URI %.40q… is longer than %d characters", s, maxAssetURI)
	case strings.ContainsFunc(s, unicode.IsSpace):
		return fmt.Errorf("asset URI %q contains white space", s)
	case strings.ContainsAny(s, notInAssetURI):
		return fmt.Errorf("asset URI %q contains one of %s, which URIs do not", s, notInAssetURI)
	case IsTemplateText(s):
		return fmt.Errorf("asset URI %q is a template; asset URIs are fixed names", s)
	}
	return nil
}

// IsTemplateText reports whether s holds Jinja markup.
func IsTemplateText(s string) bool {
	return strings.Contains(s, "{{") || strings.Contains(s, "{%")
}

// UnproducedAssets lists, for validation, the assets a DAG consumes that
// none of dags produces (a consumer that would never run).
func UnproducedAssets(consumer *DAG, dags []*DAG) []string {
	if !consumer.Consumes() {
		return nil
	}
	produced := map[string]bool{}
	for _, d := range dags {
		for uri := range d.Produced() {
			produced[uri] = true
		}
	}
	var out []string
	for _, uri := range consumer.Assets.URIs {
		if !produced[uri] {
			out = append(out, uri)
		}
	}
	return out
}
