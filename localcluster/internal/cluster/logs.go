package cluster

import (
	"flag"
	"fmt"
	stdlog "log"
	"os"
	"syscall"

	vklog "github.com/virtual-kubelet/virtual-kubelet/log"
	vkklog "github.com/virtual-kubelet/virtual-kubelet/log/klogv2"
	"k8s.io/klog/v2"
)

// redirectComponentLogs sends the components' logs (klog, the standard logger, virtual-kubelet, and anything
// else written to file descriptor 2, such as the etcd client's zap logger) to path, so stdout carries only
// the ready line and stderr only localcluster's own messages: os.Stderr is pointed at a copy of the original
// descriptor. A Go panic trace also lands in the log file; the closer restores descriptor 2.
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
	restore := captureStderr(f)
	return func() {
		klog.Flush()
		restore()
		f.Close()
	}, nil
}

func captureStderr(f *os.File) func() {
	orig, err := syscall.Dup(2)
	if err != nil {
		return func() {}
	}
	if err := syscall.Dup3(int(f.Fd()), 2, 0); err != nil {
		syscall.Close(orig)
		return func() {}
	}
	os.Stderr = os.NewFile(uintptr(orig), "/dev/stderr")
	return func() { _ = syscall.Dup3(orig, 2, 0) }
}
