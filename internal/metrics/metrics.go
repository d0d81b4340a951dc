// Package metrics defines podflow's Prometheus metrics. One Metrics value is
// built per process and handed to the scheduler, the triggerer and the
// operators; nothing registers globally.
package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are a process's metrics and their registry.
type Metrics struct {
	Registry *prometheus.Registry
	// SchedulingLatency: a task instance's queued_at → claimed by a worker.
	SchedulingLatency prometheus.Histogram
	// TasksFinished counts tries ended by this process, by final state.
	TasksFinished *prometheus.CounterVec
	// TriggersFired counts trigger events delivered, by status.
	TriggersFired *prometheus.CounterVec
	// PodAPIRequests counts Kubernetes API requests, by method and code.
	PodAPIRequests *prometheus.CounterVec
	// AlertsSent counts alert delivery attempts, by notifier and result
	// (sent, retry, failed).
	AlertsSent *prometheus.CounterVec
}

// New builds the metrics with Go and process collectors.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		SchedulingLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "podflow_scheduling_latency_seconds",
			Help:    "Time from a task instance being queued to a worker claiming it.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		TasksFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podflow_task_tries_finished_total",
			Help: "Task instance tries finished by this process, by outcome.",
		}, []string{"state"}),
		TriggersFired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podflow_triggers_fired_total",
			Help: "Trigger events delivered by this triggerer, by status.",
		}, []string{"status"}),
		PodAPIRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podflow_kubernetes_api_requests_total",
			Help: "Kubernetes API requests made by this process, by method and status code.",
		}, []string{"method", "code"}),
		AlertsSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podflow_alerts_sent_total",
			Help: "Alert delivery attempts by this process, by notifier and result (sent, retry, failed: given up).",
		}, []string{"notifier", "result"}),
	}
	m.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.SchedulingLatency, m.TasksFinished, m.TriggersFired, m.PodAPIRequests, m.AlertsSent)
	return m
}

// StateCounts reads current counts from the database for a scrape.
type StateCounts interface {
	TaskStateCounts(ctx context.Context) (map[string]int, error)
	TriggerCount(ctx context.Context) (int, error)
}

// dbCollector exports the database's view at scrape time: task instances by
// state (queue depth is state="queued") and deferred triggers.
type dbCollector struct {
	src      StateCounts
	tasks    *prometheus.Desc
	queue    *prometheus.Desc
	triggers *prometheus.Desc
}

// RegisterDatabase adds gauges read from the database at each scrape.
func (m *Metrics) RegisterDatabase(src StateCounts) {
	m.Registry.MustRegister(&dbCollector{
		src:      src,
		tasks:    prometheus.NewDesc("podflow_task_instances", "Task instances by state.", []string{"state"}, nil),
		queue:    prometheus.NewDesc("podflow_queue_depth", "Task instances queued and waiting for a worker.", nil, nil),
		triggers: prometheus.NewDesc("podflow_deferred_triggers", "Triggers of deferred tasks waiting to fire.", nil, nil),
	})
}

func (c *dbCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.tasks
	ch <- c.queue
	ch <- c.triggers
}

func (c *dbCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if counts, err := c.src.TaskStateCounts(ctx); err == nil {
		for state, n := range counts {
			ch <- prometheus.MustNewConstMetric(c.tasks, prometheus.GaugeValue, float64(n), state)
		}
		ch <- prometheus.MustNewConstMetric(c.queue, prometheus.GaugeValue, float64(counts["queued"]))
	} else {
		ch <- prometheus.NewInvalidMetric(c.tasks, err)
	}
	if n, err := c.src.TriggerCount(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(c.triggers, prometheus.GaugeValue, float64(n))
	} else {
		ch <- prometheus.NewInvalidMetric(c.triggers, err)
	}
}

// RegisterTriggererCapacity adds gauges of a triggerer's capacity and use.
func (m *Metrics) RegisterTriggererCapacity(running func() int, capacity int) {
	m.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "podflow_triggerer_capacity", Help: "Triggers this triggerer may run at once."},
			func() float64 { return float64(capacity) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "podflow_triggerer_capacity_used", Help: "Triggers this triggerer runs now."},
			func() float64 { return float64(running()) }),
	)
}
