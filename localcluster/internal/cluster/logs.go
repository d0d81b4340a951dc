package cluster

import (
	"flag"
	"fmt"
	stdlog "log"
	"os"

	vklog "github.com/virtual-kubelet/virtual-kubelet/log"
	vkklog "github.com/virtual-kubelet/virtual-kubelet/log/klogv2"
	"k8s.io/klog/v2"
)

// redirectComponentLogs sends the components' logs (klog, the standard logger, virtual-kubelet) to path, so
// stdout carries only the ready line and stderr only localcluster's own errors.
func redirectComponentLogs(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log file: %w", err)
	}
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Set("logtostderr", "false")
	_ = fs.Set("alsologtostderr", "false")
	_ = fs.Set("stderrthreshold", "FATAL")
	klog.SetOutput(f)
	stdlog.SetOutput(f)
	vklog.L = vkklog.New(nil)
	return func() {
		klog.Flush()
		f.Close()
	}, nil
}
