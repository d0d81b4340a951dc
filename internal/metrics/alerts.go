package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RegisterOutbox exports the number of alerts waiting for delivery, read
// from the database at scrape time.
func (m *Metrics) RegisterOutbox(depth func(ctx context.Context) (int64, error)) {
	m.Registry.MustRegister(&outboxCollector{depth: depth,
		desc: prometheus.NewDesc("podflow_alert_outbox_depth", "Alerts written and not yet delivered (nor given up).", nil, nil)})
}

type outboxCollector struct {
	depth func(ctx context.Context) (int64, error)
	desc  *prometheus.Desc
}

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := c.depth(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n))
}
