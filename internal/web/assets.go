package web

import (
	"net/http"
	"net/url"

	"github.com/podflow/podflow/internal/api/gen"
)

// assetsView is the assets page: every asset, and one asset's events when
// ?uri= names it.
type assetsView struct {
	Assets []gen.Asset
	URI    string
	Events []gen.AssetEvent
}

func (u *UI) assetsData(r *http.Request, v *view) error {
	v.Title, v.Nav = "Assets", "assets"
	var as gen.AssetCollection
	if err := u.call(r, "GET", "/assets", nil, nil, &as); err != nil {
		return err
	}
	d := assetsView{Assets: as.Assets, URI: r.URL.Query().Get("uri")}
	if d.URI != "" {
		var evs gen.AssetEventCollection
		if err := u.call(r, "GET", "/assets/events", url.Values{"uri": {d.URI}, "limit": {"50"}}, nil, &evs); err != nil {
			return err
		}
		d.Events = evs.AssetEvents
	}
	v.Data = d
	return nil
}
